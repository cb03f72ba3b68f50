"""``s2s evaluate --hyp`` and ``s2s significance`` at the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from sacrebleu.metrics import BLEU

from tests.helpers import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def s2s(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "s2s", *map(str, args)], capture_output=True, text=True, env=ENV
    )


def test_chinese_hypotheses_without_a_language_are_scored_as_chinese_and_said_so(tmp_path):
    """It used to take English for granted: 13a read each Chinese sentence as one word."""
    hyps = ["我们走吧。", "他今天很忙。", "你好！"]
    refs = ["我们走吧。", "他今天非常忙。", "你好！"]
    (tmp_path / "hyp.zh").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    (tmp_path / "ref.zh").write_text("\n".join(refs) + "\n", encoding="utf-8")
    done = s2s("evaluate", "--hyp", tmp_path / "hyp.zh", "--ref", tmp_path / "ref.zh")
    assert done.returncode == 0, done.stderr
    expected = BLEU(tokenize="zh").corpus_score(hyps, [refs]).score
    assert f"BLEU = {expected:.2f}" in done.stdout and "tok:zh" in done.stdout
    assert "scored as zh" in done.stderr


def test_significance_reads_a_named_test_set_and_its_lowercase_flag(trained_run, tmp_path):
    """Two runs whose test set is named ``news`` and scored case-insensitively: the second
    system is the first in capitals, so with the set's flag they tie (the command used to
    look for a set called ``test`` and to score case-sensitively)."""
    runs = []
    for name in ("a", "b"):
        run = tmp_path / name
        shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("shards", "checkpoints"))
        summary = json.loads((run / "data" / "summary.json").read_text(encoding="utf-8"))
        summary["sets"]["news"] = {**summary["sets"].pop("test"), "file": "test-news.tsv"}
        summary["sets"]["news"]["lowercase"] = True
        summary["test_set"] = "news"
        (run / "data" / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
        (run / "data" / "test.tsv").rename(run / "data" / "test-news.tsv")
        for suffix in ("hyp.txt", "src.txt"):
            (run / "eval" / f"test.{suffix}").rename(run / "eval" / f"news.{suffix}")
        runs.append(run)
    hyps = runs[1] / "eval" / "news.hyp.txt"
    hyps.write_text(hyps.read_text(encoding="utf-8").upper(), encoding="utf-8")
    done = s2s("significance", *runs)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    assert len(rows) == 2 and rows[0][1] == rows[1][1]  # the same BLEU, case ignored
