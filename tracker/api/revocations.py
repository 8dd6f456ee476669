"""The changes that can revoke an API token, each telling the token cache (token_cache.py)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save
from knox.models import AuthToken

from . import token_cache

# A login writes last_login; it revokes nothing, and admins log in often.
_HARMLESS_USER_UPDATES = frozenset({"last_login"})
_MEMBERSHIP_CHANGES = frozenset({"post_add", "post_remove", "post_clear"})


def _revoked(*, using: str = "default", **kwargs: Any) -> None:
    token_cache.revoke_kept(using)


def _changed(*, created: bool, using: str, **kwargs: Any) -> None:
    if not created:
        token_cache.revoke_kept(using)


def _user_changed(*, created: bool, using: str, update_fields: Any = None, **kwargs: Any) -> None:
    if created or (update_fields is not None and set(update_fields) <= _HARMLESS_USER_UPDATES):
        return
    token_cache.revoke_kept(using)


def _membership_changed(*, action: str, using: str, **kwargs: Any) -> None:
    if action in _MEMBERSHIP_CHANGES:
        token_cache.revoke_kept(using)


def connect() -> None:
    """Connect the receivers (ApiConfig.ready)."""
    user = get_user_model()
    for model, on_save in ((AuthToken, _changed), (user, _user_changed), (Group, _changed)):
        label = model._meta.label_lower
        post_save.connect(on_save, sender=model, dispatch_uid=f"token-cache-save-{label}")
        post_delete.connect(_revoked, sender=model, dispatch_uid=f"token-cache-delete-{label}")
    m2m_changed.connect(
        _membership_changed, sender=user.groups.through, dispatch_uid="token-cache-groups"
    )
