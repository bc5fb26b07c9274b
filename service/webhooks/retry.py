"""When a failed delivery is tried again, and when a subscription is given up on. Pure.

Exponential backoff with jitter: about a second after the first failure, doubling, never more
than the configured maximum; the jitter (±25 %) spreads the retries of many subscriptions that
failed together (a receiver back from an outage is not hit by all of them at once)."""

import random
from datetime import datetime, timedelta

FIRST_DELAY_SECONDS = 1.0
JITTER = 0.25


def retry_delay(
    failures: int, *, max_seconds: float, rand: random.Random | None = None
) -> timedelta:
    """The wait before the next attempt, after `failures` failed attempts in a row (>= 1)."""
    base = min(max_seconds, FIRST_DELAY_SECONDS * 2 ** min(failures - 1, 62))
    spread = (rand or random).uniform(1 - JITTER, 1 + JITTER)
    return timedelta(seconds=min(max_seconds, base * spread))


def gives_up(failing_since: datetime, now: datetime, *, after: timedelta) -> bool:
    """Whether a subscription failing since `failing_since` is to be paused as failing."""
    return now - failing_since >= after
