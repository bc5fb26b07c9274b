"""Creating, listing, revoking and checking API keys."""

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.service import utc_now
from service.auth.models import ApiKey
from service.auth.roles import Role
from service.auth.tokens import hash_secret, new_key, parse_key, secret_matches
from service.errors import Conflict, NotFound

# last_used_at is a hint for operators, not an audit trail: refreshing it at most once a minute
# keeps reads from turning into writes.
LAST_USED_GRANULARITY = timedelta(minutes=1)


async def create_key(session: AsyncSession, *, name: str, role: Role) -> tuple[ApiKey, str]:
    """Returns the stored key and its token, which is shown once and never again."""
    token, parsed = new_key()
    key = ApiKey(
        key_id=parsed.key_id,
        name=name,
        role=role.value,
        secret_hash=hash_secret(parsed.secret),
        created_at=utc_now(),
    )
    session.add(key)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"A key named {name!r} exists already (names are never reused).") from None
    return key, token


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list((await session.scalars(select(ApiKey).order_by(ApiKey.id))).all())


async def revoke_key(session: AsyncSession, name: str) -> ApiKey:
    key = await session.scalar(select(ApiKey).where(ApiKey.name == name))
    if key is None:
        raise NotFound(f"There is no key named {name!r}.")
    if key.revoked_at is None:
        key.revoked_at = utc_now()
    await session.flush()
    return key


async def authenticate(session: AsyncSession, token: str) -> ApiKey | None:
    """The live key a token belongs to, or None. Looked up on every request, so a revocation
    takes effect at once on every worker."""
    parsed = parse_key(token)
    if parsed is None:
        return None
    key = await session.scalar(select(ApiKey).where(ApiKey.key_id == parsed.key_id))
    if key is None or key.revoked_at is not None:
        return None
    if not secret_matches(parsed.secret, key.secret_hash):
        return None
    now = utc_now()
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_GRANULARITY:
        await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    return key
