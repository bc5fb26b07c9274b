"""Creating, listing, revoking and checking API keys."""

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.auth.reserved import reserved_name_in
from service.auth.roles import Role
from service.auth.tokens import ParsedKey, hash_secret, new_key, parse_key, secret_matches
from service.clock import utc_now
from service.errors import Conflict, InvalidInput, NotFound
from service.models.keys import ApiKey

logger = logging.getLogger(__name__)

# last_used_at is a hint for operators, not an audit trail: refreshing it at most once a minute
# keeps reads from turning into writes.
LAST_USED_GRANULARITY = timedelta(minutes=1)


async def create_key(session: AsyncSession, *, name: str, role: Role) -> tuple[ApiKey, str]:
    """Returns the stored key and its token, which is shown once and never again."""
    # Checked here rather than in the request schema, so the API and the CLI cannot differ.
    reserved = reserved_name_in(name)
    if reserved is not None:
        raise InvalidInput(
            f"The key name {name!r} is reserved: the service records its own changes as "
            f"{reserved!r}, and a key's changes must never pass for them."
        )
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


@dataclass(frozen=True)
class KeyHolder:
    name: str
    role: Role


KEY_BY_ID = select(
    ApiKey.id, ApiKey.name, ApiKey.role, ApiKey.secret_hash, ApiKey.last_used_at, ApiKey.revoked_at
).where(ApiKey.key_id == bindparam("key_id"))


async def authenticate(engine: AsyncEngine, token: str) -> KeyHolder | None:
    """The live key a token belongs to, or None. Looked up on every request, so a revocation
    takes effect at once on every worker.

    `engine` runs in autocommit (db.autocommit_engine): the lookup is one statement, and the
    occasional last_used_at refresh commits on its own, apart from the request's work.
    """
    parsed = parse_key(token)
    if parsed is None:
        return None
    async with engine.connect() as connection:
        key = (await connection.execute(KEY_BY_ID, {"key_id": parsed.key_id})).first()
        holder = None if key is None else key_holder(parsed, key._mapping)
        if key is None or holder is None:  # both, for the type checker
            return None
        if last_use_is_stale(key._mapping):
            now = utc_now()
            try:
                await connection.execute(
                    update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now)
                )
            except OperationalError:
                # A hint, not the request's work: a database that cannot take writes (read-only,
                # full, locked) must not turn a keyed read into a 503.
                logger.warning("could not refresh last_used_at of key %r", key.name)
    return holder


class KeyRow(Protocol):
    """A row of KEY_BY_ID read by column name: SQLAlchemy's row mapping, or asyncpg's Record."""

    def __getitem__(self, name: str, /) -> Any: ...


def key_holder(parsed: ParsedKey, key: KeyRow | None) -> KeyHolder | None:
    """Who holds the key KEY_BY_ID found (None: no such key, revoked, or the wrong secret)."""
    if key is None or key["revoked_at"] is not None:
        return None
    if not secret_matches(parsed.secret, key["secret_hash"]):
        return None
    return KeyHolder(key["name"], Role(key["role"]))


def last_use_is_stale(key: KeyRow) -> bool:
    """Whether the key's last_used_at is due a refresh (see LAST_USED_GRANULARITY)."""
    last_used_at = key["last_used_at"]
    return last_used_at is None or last_used_at < utc_now() - LAST_USED_GRANULARITY
