"""docs/export-format.md's worked example verifies, and the verifier refuses what it forbids."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from .conftest import TOOL, run_tool

DOC = Path(__file__).resolve().parents[2] / "docs" / "export-format.md"


def example() -> list[bytes]:
    blocks = re.findall(r"```jsonl\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert blocks, "docs/export-format.md has no ```jsonl example"
    return blocks[0].encode("utf-8").splitlines(keepends=True)


def test_the_worked_example_verifies(tmp_path):
    lines = example()
    result = run_tool(b"".join(lines), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    head = json.loads(lines[0])["head"]
    assert result.stdout.decode().strip() == f"OK 2 events, head {head}"


def test_a_fractional_number_is_refused(tmp_path):
    lines = example()
    lines[2] = lines[2].replace(b'"schema_version":1', b'"schema_version":1.0')
    result = run_tool(b"".join(lines), tmp_path)
    assert result.returncode == 1
    assert result.stdout.decode().startswith("FAILED at line 3: not valid JSON: number 1.0")


def test_a_duplicate_key_is_refused(tmp_path):
    lines = example()
    lines[1] = lines[1].replace(b'{"actor":"alice",', b'{"actor":"alice","actor":"eve",')
    result = run_tool(b"".join(lines), tmp_path)
    assert result.returncode == 1
    assert "line 2: not valid JSON: duplicate key 'actor'" in result.stdout.decode()


def test_an_extra_field_is_refused(tmp_path):
    lines = example()
    lines[1] = lines[1].replace(b'{"actor"', b'{"note":"unhashed","actor"')
    result = run_tool(b"".join(lines), tmp_path)
    assert result.returncode == 1
    assert result.stdout.decode().startswith("FAILED at line 2: unexpected fields ['note']")


def test_an_empty_export_is_refused(tmp_path):
    result = run_tool(b"", tmp_path)
    assert result.returncode == 1
    assert result.stdout.decode().startswith("FAILED at line 1")


def tool_constant(name: str) -> int:
    spec = importlib.util.spec_from_file_location("verify_export", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def test_the_limits_the_page_states_are_the_tools():
    text = DOC.read_text(encoding="utf-8")
    depth = re.search(r"nests at most \*\*(\d+)\*\* levels deep", text)
    largest = re.search(r"2\^53 \u2212 1 = (\d+) in magnitude", text)
    assert depth, "the page states no nesting limit"
    assert largest, "the page states no integer limit"
    assert int(depth.group(1)) == tool_constant("MAX_DEPTH")
    assert int(largest.group(1)) == tool_constant("MAX_SAFE_INTEGER") == 2**53 - 1


def test_an_integer_beyond_the_stated_limit_is_refused(tmp_path):
    lines = example()
    lines[2] = lines[2].replace(b'"schema_version":1', b'"schema_version":9007199254740992')
    result = run_tool(b"".join(lines), tmp_path)
    assert result.returncode == 1
    assert result.stdout.decode().startswith(
        "FAILED at line 3: not valid JSON: integer 9007199254740992 is beyond"
    )
