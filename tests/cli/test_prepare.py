"""``s2s prepare``: the run's data stage from the command line, its reports and its errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import FIXTURES, ROOT, TINY

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


def test_prepare_makes_what_train_makes_and_train_reuses_it(
    trained_run, corpus_file, tmp_path, monkeypatch
):
    """One data path: ``s2s prepare`` holds out the same dev and test sentences as ``train``
    for the same seed (and writes the same SentencePiece models and shards); ``train`` on the
    prepared folder reads nothing again."""
    from s2s.config import load_config
    from s2s.config.run_folder import RunPaths
    from s2s.data import splitting
    from s2s.data.stage import prepare
    from s2s.text.tokenizer import Tokenizer

    run = tmp_path / "run"
    sets = [arg for item in TINY for arg in ("--set", item)]
    done = subprocess.run(
        [*(sys.executable, "-m", "s2s", "prepare", "--lang", "zh-en", "--run", str(run)),
         *("--corpus", str(corpus_file), *sets)],
        capture_output=True, text=True, env=subprocess_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for name in ("data/train.tsv", "data/dev.tsv", "data/test.tsv"):
        assert (run / name).read_bytes() == (trained_run / name).read_bytes(), name
    for side in ("src", "tgt"):  # the same pieces and scores (the files name their folder)
        ours, theirs = (
            Tokenizer(folder / "spm" / f"{side}.model").sp for folder in (run, trained_run)
        )
        assert ours.get_piece_size() == theirs.get_piece_size()
        assert all(
            (ours.id_to_piece(i), ours.get_score(i)) == (theirs.id_to_piece(i), theirs.get_score(i))
            for i in range(ours.get_piece_size())
        )
    index = json.loads((run / "shards" / "index.json").read_text())
    assert index == json.loads((trained_run / "shards" / "index.json").read_text())

    def no_reading(*args, **kwargs):
        raise AssertionError("the corpus was read again")

    monkeypatch.setattr(splitting, "open_corpus", no_reading)
    said = []
    config = load_config("zh-en", overrides=TINY)
    prepared = prepare(config, RunPaths(run), corpus_file, log=said.append)
    assert any(line.startswith("data: reusing") for line in said)
    assert prepared.shards.total_pairs == sum(index["pairs"])
