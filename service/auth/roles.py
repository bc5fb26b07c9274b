"""Who may do what. Pure."""

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"


_RANK = {Role.VIEWER: 1, Role.EDITOR: 2, Role.ADMIN: 3}


def role_allows(held: Role, needed: Role) -> bool:
    """Roles are nested: an editor can do what a viewer can, an admin what an editor can."""
    return _RANK[held] >= _RANK[needed]
