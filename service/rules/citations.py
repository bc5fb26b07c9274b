"""Citations: every fact in the record names where it comes from. Pure."""

import re

_URL = re.compile(r"https?://[^\s()]+")


def citations_of(source_url: str | None, sources: list[str] | None) -> tuple[str | None, list[str]]:
    """A change's `source_url` and `sources` as its event records them: every citation given,
    `source_url` first, and `source_url` defaulting to the first URL among the citations."""
    citations = list(sources or [])
    if source_url and source_url not in citations:
        citations.insert(0, source_url)
    return source_url or first_url(citations), citations


def first_url(citations: list[str]) -> str | None:
    """The first http(s) address among citations, some of which are text with a URL inside."""
    for citation in citations:
        match = _URL.search(citation)
        if match:
            return match.group(0).rstrip(".,;")
    return None
