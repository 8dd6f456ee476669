"""Who may use the deal pages of the admin: editors record facts, auditors replay and verify.

The group names are the API's roles (`tracker.api.roles.Role`), repeated here because the deals
app may not import the API. Every page also needs an active staff user (the admin's own check).
"""

from __future__ import annotations

from typing import Any

EDITOR = "editor"
AUDITOR = "auditor"


def _groups(user: Any) -> set[str]:
    cached = getattr(user, "_deal_admin_groups", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._deal_admin_groups = cached
    return cached


def _staff(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def can_record(user: Any) -> bool:
    """May open deals and record, retract or correct facts."""
    return _staff(user) and (user.is_superuser or EDITOR in _groups(user))


def can_audit(user: Any) -> bool:
    """May see the timeline, replay a deal to any moment and verify its hash chain."""
    return _staff(user) and (user.is_superuser or AUDITOR in _groups(user))


def can_view_deals(user: Any) -> bool:
    return can_record(user) or can_audit(user)
