"""`manage.py create_api_user NAME --role ROLE [--password P] [--revoke-others]`.

Prints a new API token on stdout (alone, so scripts can capture it) and what was done on
stderr. Tokens are stored hashed, so a token can be shown only when it is issued: each run
issues a new one. The user's earlier tokens keep working unless --revoke-others is given.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from tracker.api.auth import describe_expiry, issue_token
from tracker.deals.roles import Role, ensure_role_groups


class Command(BaseCommand):
    help = "Create or update an API user with a role, and print a new token for it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[role.value for role in Role])
        parser.add_argument("--password", help="Also allow session (browser) login.")
        parser.add_argument(
            "--revoke-others",
            action="store_true",
            help="Make the user's earlier tokens stop working.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        role = Role(options["role"])
        with transaction.atomic():
            ensure_role_groups()
            user, created = get_user_model().objects.get_or_create(username=username)
            if options["password"]:
                user.set_password(options["password"])
            elif created:
                user.set_unusable_password()
            user.save()
            user.groups.add(Group.objects.get(name=role.value))
            token = issue_token(user, revoke_others=options["revoke_others"])
        revoked = "; earlier tokens revoked" if options["revoke_others"] else ""
        self.stderr.write(
            f"{'Created' if created else 'Updated'} user {username!r} with role {role.value}"
            f"{revoked}; new token ({describe_expiry()}, shown once):"
        )
        self.stdout.write(token)
