from service.conditions import etag_for_version, if_match_passes, if_none_match_hits


def test_if_match_is_strong() -> None:
    assert if_match_passes('"3"', etag_for_version(3))
    assert if_match_passes('"1", "3"', '"3"')
    assert if_match_passes("*", '"3"')
    assert not if_match_passes('W/"3"', '"3"')
    assert not if_match_passes('"2"', '"3"')
    assert not if_match_passes("3", '"3"')


def test_if_none_match_is_weak() -> None:
    assert if_none_match_hits('W/"3"', '"3"')
    assert if_none_match_hits('"3"', 'W/"3"')
    assert if_none_match_hits("*", '"3"')
    assert not if_none_match_hits('"2", "4"', '"3"')
