"""With no configuration at all the project runs embedded: SQLite and tasks run in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.stack import SERVICE_VARIABLES

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json
from tracker.deals import services
from tracker.deals.models import Organisation
from tracker.projections.models import DealState

source = {"title": "Embedded test", "publisher": "unknown"}
a = Organisation.objects.create(name="A", kind="company", country="GB")
b = Organisation.objects.create(name="B", kind="company", country="IT")
opened = services.open_deal(
    title="Embedded deal", kind="mou", summary="",
    parties=[{"organisation": str(a.id), "role": "partner"},
             {"organisation": str(b.id), "role": "partner"}],
    occurred={"date": "2025-01-01", "precision": "year"}, source=source, actor="test",
)
after_open = DealState.objects.get(deal_id=opened.stream_id).stage
services.record_event(
    deal_id=opened.stream_id, event_type="MouSigned",
    data={"parties": [str(a.id), str(b.id)], "scope": "drones"},
    occurred={"date": "2025-01-01", "precision": "year"}, source=source,
    expected_version=1, actor="test",
)
row = DealState.objects.get(deal_id=opened.stream_id)
print(json.dumps({"after_open": after_open, "stage": row.stage, "version": row.version}))
"""


def test_embedded_mode_projects_at_once_with_no_broker(tmp_path: Path):
    env = {key: value for key, value in os.environ.items() if key not in SERVICE_VARIABLES}
    # The embedded default is a SQLite file beside the code; the test keeps its own elsewhere.
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'embedded.sqlite3'}"
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["LOG_LEVEL"] = "WARNING"
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    result = subprocess.run(
        [*manage, "shell", "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"after_open": "announced", "stage": "mou_signed", "version": 2}
