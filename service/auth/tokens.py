"""API key tokens. Pure: generation, parsing, hashing, comparison.

A key reads `rmk_<key id>_<secret>`: the recognisable prefix lets secret scanners spot a leaked
key; the key id (not secret) finds the row; only SHA-256 of the secret is stored. The secret has
256 bits of entropy, so a fast hash is enough: there is nothing to brute-force.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "rmk"


@dataclass(frozen=True)
class ParsedKey:
    key_id: str
    secret: str


def new_key() -> tuple[str, ParsedKey]:
    parsed = ParsedKey(key_id=secrets.token_hex(6), secret=secrets.token_urlsafe(32))
    return f"{PREFIX}_{parsed.key_id}_{parsed.secret}", parsed


def parse_key(token: str) -> ParsedKey | None:
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or len(key_id) != 12 or len(secret) < 32 or len(token) > 200:
        return None
    return ParsedKey(key_id=key_id, secret=secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
