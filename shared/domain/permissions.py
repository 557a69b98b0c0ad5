"""Who may see and act on what. Checked on the server for every action, whatever the button said."""

from __future__ import annotations

from collections.abc import Sequence

from shared.taxonomy import LABELS

# Details of these categories stay with the handling team: group chats see the number only.
PRIVATE_CATEGORIES = frozenset({"legal_aid", "mediation"})


def is_admin(roles: Sequence[str] | None) -> bool:
    return "admin" in (roles or [])


def is_staff_of(roles: Sequence[str] | None, user_community: str | None, community: str) -> bool:
    """Staff act on their own community's requests; admins on every community's."""
    if is_admin(roles):
        return True
    return "staff" in (roles or []) and user_community == community


def community_is_fixed(roles: Sequence[str] | None, current: str | None) -> bool:
    """Residents (and volunteers) choose their community themselves. Staff act for the community an
    administrator gave them (`linju users promote … --community`): once they have one, only an
    administrator moves them — else a community button would make them staff of another community.
    Admins act on every community anyway."""
    return current is not None and "staff" in (roles or []) and not is_admin(roles)


def is_owner(user_id: int, request_user_id: int | None) -> bool:
    return request_user_id is not None and user_id == request_user_id


def is_private_category(label: str | None) -> bool:
    assert label is None or label in LABELS
    return label in PRIVATE_CATEGORIES
