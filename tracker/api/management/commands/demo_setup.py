"""`manage.py demo_setup`: the demo data, one user per role, and where to look.

Safe to run again: the data and users are found, not duplicated. Tokens are stored hashed, so
they cannot be shown again: each run issues every demo user a new token and revokes the ones
printed before. The passwords are printed on purpose: this is for the embedded demo on
127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.urls import reverse

from tracker.api.auth import issue_token
from tracker.deals.management.commands.seed_demo import deal_id
from tracker.deals.models import RegisterImport
from tracker.deals.registers.importer import deal_id_for, import_register
from tracker.deals.registers.names import load_names
from tracker.deals.roles import Role, ensure_role_groups

SIPRI_SAMPLES = Path(__file__).resolve().parents[3] / "deals" / "fixtures" / "sipri"
FIRST_EDITION = SIPRI_SAMPLES / "trade-register-2024.csv"
NEXT_EDITION = SIPRI_SAMPLES / "trade-register-2025.csv"

# name -> (role group or None for a superuser, is_staff)
DEMO_USERS = {
    "admin": (None, True),
    "editor": (Role.EDITOR, True),
    "reader": (Role.READER, False),
    "auditor": (Role.AUDITOR, True),
}


def demo_password(username: str) -> str:
    return f"{username}-demo-2025"


class Command(BaseCommand):
    help = "Load the demo data, create admin/editor/reader/auditor users, print where to look."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, base_url: str, **options: Any) -> None:
        call_command("seed_demo", verbosity=0)
        self._first_edition()
        tokens = self._users()
        base = base_url.rstrip("/")
        reader = tokens["reader"]
        deal2, deal3 = deal_id(2), deal_id(3)
        lines = [
            "",
            f"deal-tracker demo: {base}/",
            "",
            f"  Admin (enter facts):   {base}/admin/",
            f"  API docs (Swagger):    {base}/api/docs/",
            f"  Timeline of deal 2:    {base}{reverse('admin:deal_audit', args=[deal2])}",
            f"  Health:                {base}/health/",
            "",
            "  user      password              API token",
        ]
        lines += [f"  {name:<9} {demo_password(name):<21} {tokens[name]}" for name in DEMO_USERS]
        lines += [
            "",
            "  Try (as the reader):",
            f'    curl -s -H "Authorization: Token {reader}" {base}/api/v1/deals/',
            f'    curl -s -H "Authorization: Token {reader}" "{base}/api/v1/deals/{deal2}/state/'
            '?as_of=2025-05-31"',
            f'    curl -s -H "Authorization: Token {reader}" {base}/api/v1/deals/{deal3}/',
            "",
            "  SIPRI's trade register (invented sample rows), its 2024 edition imported:",
            f'    curl -s -H "Authorization: Token {reader}" '
            f'"{base}/api/v1/deals/?external_id=SIPRI:60123"',
            f'    curl -s -H "Authorization: Token {tokens["auditor"]}" {base}/api/v1/imports/',
            "  Import the 2025 edition and see what it changed:",
            f"    .venv/bin/python manage.py import_register {_relative(NEXT_EDITION)}",
            f"    {base}{reverse('admin:deal_audit', args=[deal_id_for('SIPRI:60123')])}",
            "",
        ]
        self.stdout.write("\n".join(lines))

    def _first_edition(self) -> None:
        """The sample's names mapped and its first edition imported, once."""
        load_names((SIPRI_SAMPLES / "names.csv").read_text(encoding="utf-8"))
        content = FIRST_EDITION.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        if not RegisterImport.objects.filter(digest=digest).exists():
            import_register(content, actor="demo_setup", file_name=FIRST_EDITION.name)

    @transaction.atomic
    def _users(self) -> dict[str, str]:
        ensure_role_groups()
        model = get_user_model()
        tokens = {}
        for name, (role, staff) in DEMO_USERS.items():
            user, _ = model.objects.get_or_create(username=name)
            user.is_staff = staff
            user.is_superuser = role is None
            user.set_password(demo_password(name))
            user.save()
            if role is not None:
                user.groups.add(Group.objects.get(name=role.value))
            tokens[name] = issue_token(user, revoke_others=True)
        return tokens


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
