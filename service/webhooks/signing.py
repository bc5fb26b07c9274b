"""Webhook secrets and signatures, per the Standard Webhooks specification, signed with that
specification's own library (`standardwebhooks`), so receivers verify with the same code.

A subscription's secret is not stored: it is HMAC-SHA256(ROADMAP_WEBHOOK_SECRET_KEY, salt),
and only the salt is in the database. A dump of the database alone therefore cannot forge a
signature; the key lives in the service's environment. Rotating a secret draws a new salt.
Changing the key changes every secret (each subscription's receiver then needs the secret of
a rotation)."""

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from standardwebhooks import Webhook as Signer

SECRET_PREFIX = "whsec_"  # noqa: S105 - the specification's prefix, not a secret


def new_salt() -> str:
    return secrets.token_urlsafe(24)


def secret_for(key: str, salt: str) -> str:
    """The subscription's secret in the specification's form: whsec_ + base64 of 32 bytes."""
    raw = hmac.new(key.encode(), salt.encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(raw).decode()


def signature(secret: str, message_id: str, timestamp: datetime, body: str) -> str:
    """The `webhook-signature` header's value: `v1,<base64 HMAC-SHA256>`."""
    return Signer(secret).sign(msg_id=message_id, timestamp=timestamp, data=body)


def message_id(event_id: int) -> str:
    """The `webhook-id` of an event's delivery: the same for every attempt of the event, so a
    receiver drops duplicates by it."""
    return f"evt_{event_id}"
