"""HTTP conditional requests (RFC 9110 §13), the parts this service uses. Pure."""


def etag_for_version(version: int) -> str:
    """A strong entity tag: a programme's representation changes exactly when its version does."""
    return f'"{version}"'


def _entity_tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def if_match_passes(header: str, current_etag: str) -> bool:
    """If-Match uses the strong comparison: a weak tag (W/"…") never matches."""
    tags = _entity_tags(header)
    return "*" in tags or current_etag in tags


def if_none_match_hits(header: str, current_etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/"x" and "x" are the same."""
    tags = [tag.removeprefix("W/") for tag in _entity_tags(header)]
    return "*" in tags or current_etag.removeprefix("W/") in tags
