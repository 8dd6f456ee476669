"""A 20-second version of `make loadtest`: no 5xx under load, and nothing lost afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load import check_after, run, start_stack

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(400)]


def test_sixteen_clients_for_twenty_seconds_get_no_server_error(tmp_path: Path):
    stack = start_stack(tmp_path)
    try:
        outcome = run(stack, seconds=20, clients=16, deals=30)
        checks = check_after(stack, outcome["deals"])
    finally:
        stack.stop()
    by_endpoint = {f["endpoint"]: f for f in outcome["figures"]}
    assert sum(f["server_errors"] for f in outcome["figures"]) == 0, outcome["figures"]
    appends = by_endpoint["POST /deals/{id}/events/"]["statuses"]
    assert appends.get("201", 0) > 0
    assert appends.get("409", 0) > 0, "no deliberate conflict was provoked"
    assert set(appends) <= {"201", "409"}
    assert checks == {"bad_chains": 0, "projections_not_equal_to_replay": 0}
