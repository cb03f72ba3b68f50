"""``s2s prepare``: the run's data stage from the command line, its reports and its errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import FIXTURES, ROOT

CASES = FIXTURES / "cleaning"


EXPECTED = json.loads((CASES / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_prepare_writes_the_same_report_from_the_command_line(name, tmp_path):
    report_file = tmp_path / "report.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "s2s", "prepare", "--lang", "zh-en"),
            *("--run", str(tmp_path / "run")),
            *("--corpus", str(CASES / f"{name}.tsv"), "--report", str(report_file)),
            *("--set", "data.dev_sources=1", "--set", "data.test_sources=1"),
        ],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(report_file.read_text(encoding="utf-8")) == EXPECTED[name]["report"]
    for reason, line in EXPECTED[name]["first_line"].items():
        assert re.search(rf"dropped {reason}\s+\d+\s+\(first at line {line}\)", done.stderr)


@pytest.mark.parametrize("content", [None, b""], ids=["missing", "empty"])
def test_prepare_stops_on_a_missing_or_empty_file_with_a_message(content, tmp_path):
    path = tmp_path / "corpus.tsv"
    if content is not None:
        path.write_bytes(content)
    done = subprocess.run(
        [sys.executable, "-m", "s2s", "prepare", "--corpus", str(path), "--run", str(tmp_path)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {path}: ") and "Traceback" not in done.stderr


def subprocess_env() -> dict:
    root = str(ROOT)
    return {**os.environ, "PYTHONPATH": root, "PYTHONUTF8": "1"}
