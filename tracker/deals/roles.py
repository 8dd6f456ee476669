"""Who may read, record and audit deals: the Django groups `reader`, `editor` and `auditor`.

One definition for every edge: the API's permissions (API.md, "Who may do what") and the back
office's pages both ask `has_role`. Editors and auditors may do everything a reader may;
superusers may do everything.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group


class Role(StrEnum):
    READER = "reader"
    EDITOR = "editor"
    AUDITOR = "auditor"


def ensure_role_groups(*, using: str = "default", **kwargs: Any) -> None:
    """Create the three groups if missing.

    Connected to post_migrate (after the auth app's), so the groups exist after every migrate
    and after every flush, which empties auth_group and then sends post_migrate again.
    """
    app_config = kwargs.get("app_config")
    if app_config is not None and app_config.label != "auth":
        return
    migration_apps = kwargs.get("apps")
    model = migration_apps.get_model("auth", "Group") if migration_apps else Group
    for role in Role:
        model.objects.using(using).get_or_create(name=role.value)


def has_role(user: AbstractBaseUser | AnonymousUser | None, role: Role) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if getattr(user, "is_superuser", False):
        return True
    names = _group_names(user)
    if role is Role.READER:
        return bool(names & {r.value for r in Role})
    return role.value in names


def _group_names(user: Any) -> set[str]:
    # One query per request: permission checks may ask several times.
    cached = getattr(user, "_role_names", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._role_names = cached
    return cached
