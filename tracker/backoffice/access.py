"""Who may use the deal pages of the admin: editors record facts, auditors replay and verify.

The roles are `tracker.deals.roles`, the same the API asks; every page also needs an active
staff user (the admin's own check).
"""

from __future__ import annotations

from typing import Any

from tracker.deals.roles import Role, has_role


def _staff(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def can_record(user: Any) -> bool:
    """May open deals and record, retract or correct facts."""
    return _staff(user) and has_role(user, Role.EDITOR)


def can_audit(user: Any) -> bool:
    """May see the timeline, replay a deal to any moment and verify its hash chain."""
    return _staff(user) and has_role(user, Role.AUDITOR)


def can_view_deals(user: Any) -> bool:
    return can_record(user) or can_audit(user)
