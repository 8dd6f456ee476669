from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ApiConfig(AppConfig):
    name = "tracker.api"
    label = "api"

    def ready(self) -> None:
        from tracker.deals.roles import ensure_role_groups

        from . import revocations

        revocations.connect()

        # post_migrate rather than a data migration: it also runs after a test flush empties
        # auth_group. This app has no models, so Django sends it no post_migrate of its own;
        # the handler acts on the auth app's.
        post_migrate.connect(ensure_role_groups, dispatch_uid="api-role-groups")
