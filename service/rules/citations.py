"""Citations: every fact in the record names where it comes from. Pure."""

import re

_URL = re.compile(r"https?://[^\s()]+")


def first_url(citations: list[str]) -> str | None:
    """The first http(s) address among citations, some of which are text with a URL inside."""
    for citation in citations:
        match = _URL.search(citation)
        if match:
            return match.group(0).rstrip(".,;")
    return None
