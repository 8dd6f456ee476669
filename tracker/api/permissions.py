"""Permission classes for API.md's table of roles.

Anonymous requests are refused by DRF with 401 before these run (`permission_denied` raises
NotAuthenticated when no authenticator succeeded); an authenticated user without the role gets
403, never a silent empty list.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from tracker.deals.roles import Role, has_role


class _RolePermission(BasePermission):
    role: Role
    code = "permission_denied"

    def has_permission(self, request: Request, view: Any) -> bool:
        return has_role(request.user, self.role)


class CanRead(_RolePermission):
    """Readers, editors and auditors."""

    role = Role.READER
    message = "This needs the reader, editor or auditor role."


class CanAudit(_RolePermission):
    role = Role.AUDITOR
    message = "This needs the auditor role."


class CanEdit(BasePermission):
    """Reads for every role; writes for editors."""

    code = "permission_denied"

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            self.message = CanRead.message
            return has_role(request.user, Role.READER)
        self.message = "This needs the editor role."
        return has_role(request.user, Role.EDITOR)
