"""`make demo` from a fresh clone: it installs, loads the demo, serves, and says how to look."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from bench.stack import SERVICE_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
CURL = re.compile(r"^\s+(curl -s .*)$", re.MULTILINE)

pytestmark = pytest.mark.timeout(600)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_demo(clone: Path, port: int, log: Path) -> subprocess.Popen:
    left_out = SERVICE_VARIABLES | {"VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE"}
    env = {key: value for key, value in os.environ.items() if key not in left_out}
    return subprocess.Popen(
        ["make", "demo", f"DEMO_PORT={port}"],
        cwd=clone,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for_commands(process: subprocess.Popen, log: Path, port: int) -> list[str]:
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        commands = CURL.findall(text)
        if len(commands) == 5 and _listening(port):
            return commands
        assert process.poll() is None, text[-4000:]
        time.sleep(0.5)
    raise AssertionError(log.read_text(errors="replace")[-4000:])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    process.wait(30)


def curl(command: str) -> dict:
    result = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30)
    return json.loads(result.stdout)


def test_make_demo_from_a_fresh_clone_serves_the_demo_twice(tmp_path: Path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    for attempt in (1, 2):
        port = free_port()
        log = tmp_path / f"demo-{attempt}.log"
        process = run_demo(clone, port, log)
        try:
            answers = [curl(c) for c in wait_for_commands(process, log, port)]
            listing, replay, contract, sipri, imports = answers
        finally:
            stop(process)
        output = log.read_text()
        for user in ("admin", "editor", "reader", "auditor"):
            assert re.search(rf"^\s+{user}\s+\S+\s+[0-9a-f]{{64}}$", output, re.MULTILINE)
        assert f"http://127.0.0.1:{port}/admin/" in output
        assert f"http://127.0.0.1:{port}/api/docs/" in output
        # The five deals of DOMAIN.md and the seven the register sample resolves.
        assert len(listing["results"]) == 12
        (tb2,) = sipri["results"]
        assert tb2["external_ids"] == ["SIPRI:60123"]
        assert tb2["contracts"][0]["delivered"] == 24
        assert [i["edition"] for i in imports["results"]] == ["2024-03-11"]
        assert (replay["state"]["stage"], replay["uncertain"]) == ("mou_signed", True)
        assert contract["contracts"][0]["value"] == {"amount": "5400000000", "currency": "GBP"}
        assert contract["contracts"][0]["quantity"] == 20
