"""Names the service records as the actor of its own changes, which no API key may take. Pure.

An event's actor is the name of the key that made the change (programs.router.actor_of). A key
named "seed" would make its changes indistinguishable from the bundled, sourced facts the seed
loads, so attribution would be forgeable by anyone who can create a key.
"""

# The actor of everything the seed loader writes (service.seed.loader.SEED_ACTOR).
SEED_ACTOR_NAME = "seed"

# "system" is not written yet; it is held back for the service's own future actions (a purge,
# a repair), because a name once given to a key can never be taken back: revoked keys stay.
# "anonymous" is how a change without a key reads, and the idempotency scope of calls without
# one (unit_of_work.caller_scope).
RESERVED_ACTOR_NAMES = (SEED_ACTOR_NAME, "system", "anonymous")


def reserved_name_in(name: str) -> str | None:
    """The reserved name that `name` claims, or None.

    Case does not matter ("Seed"), and neither does what follows the word unless it is a letter:
    "seed-2", "seed.import" and "System_bot" read as the service's own; "seedling" and
    "systematic" are words of their own and stay available.
    """
    lowered = name.lower()
    for reserved in RESERVED_ACTOR_NAMES:
        rest = lowered.removeprefix(reserved)
        if rest != lowered and not rest[:1].isalpha():
            return reserved
    return None
