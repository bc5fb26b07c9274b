"""How many examples each Hypothesis property tries: every one it asks for in a full run, a
tenth of them in the quick loop (`pytest -m "not live"`, see tests/conftest.py), as Hypothesis'
own documentation suggests for a development profile. The named @example cases run in both."""

from hypothesis import settings

FULL = 100  # Hypothesis' own default max_examples

settings.register_profile("full", max_examples=FULL)
settings.register_profile("quick", max_examples=FULL // 10)


def examples(wanted: int) -> int:
    """`wanted` examples in a full run, scaled to the profile loaded (at least one)."""
    return max(1, wanted * settings().max_examples // FULL)


def load_profile(*, quick: bool) -> None:
    settings.load_profile("quick" if quick else "full")
