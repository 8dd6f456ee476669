"""`manage.py create_api_user NAME --role ROLE [--password P] [--new-token]`.

Prints the user's API token on stdout (alone, so scripts can capture it) and what was done on
stderr. Safe to rerun: an existing user keeps its token unless --new-token is given.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token

from tracker.api.roles import Role, ensure_role_groups


class Command(BaseCommand):
    help = "Create or update an API user with a role, and print its token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[role.value for role in Role])
        parser.add_argument("--password", help="Also allow session (browser) login.")
        parser.add_argument(
            "--new-token", action="store_true", help="Replace an existing token with a new one."
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
            if options["new_token"]:
                Token.objects.filter(user=user).delete()
            token, token_created = Token.objects.get_or_create(user=user)
        self.stderr.write(
            f"{'Created' if created else 'Updated'} user {username!r} with role {role.value}; "
            f"{'new' if token_created else 'existing'} token:"
        )
        self.stdout.write(token.key)
