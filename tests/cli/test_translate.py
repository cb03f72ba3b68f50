"""``s2s translate`` at the command line: answers as lines arrive, numbers warnings by input
line, leaves stdout open."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading

import s2s
from tests.helpers import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_a_line_typed_is_translated_before_the_input_ends(trained_run):
    """Interactive use: one line in, its translation out, while stdin stays open (the command
    used to wait for 256 lines or the end of input)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "s2s", "translate", "--run", str(trained_run)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    answers: queue.Queue = queue.Queue()
    threading.Thread(
        target=lambda: [answers.put(line) for line in proc.stdout], daemon=True
    ).start()
    try:
        proc.stdin.write("我们走吧。\n")
        proc.stdin.flush()
        first = answers.get(timeout=300)  # waits for start-up; fails if it waits for EOF
        assert proc.poll() is None  # the input is still open
        proc.stdin.write("你好！\n")
        proc.stdin.flush()
        second = answers.get(timeout=120)
        expected = s2s.load(trained_run).translate(["我们走吧。", "你好！"])
        assert [first.rstrip("\n"), second.rstrip("\n")] == expected
    finally:
        proc.stdin.close()
        proc.wait(timeout=120)
    assert proc.returncode == 0


def test_truncation_warnings_number_the_lines_of_the_whole_input(trained_run):
    long = "我们走吧。" * 40  # more pieces than the largest bucket holds
    lines = ["你好！"] * 12 + [long] + ["你好！"] * 3  # groups of 8 lines: the long one is 5th
    done = subprocess.run(
        [sys.executable, "-m", "s2s", "translate", "--run", str(trained_run), "--batch-size", "2"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.split("\n")) == len(lines) + 1
    assert done.stderr.count("warning: sentence") == 1
    assert "warning: sentence 13 has" in done.stderr


def test_translating_a_file_leaves_stdout_open(trained_run, tmp_path, capsys):
    """In-process, as a notebook or a script would call it: the command used to close
    sys.stdout when it finished, and the next print failed."""
    import sys as system

    from s2s.cli import main

    source = tmp_path / "in.txt"
    source.write_text("我们走吧。\n你好！\n", encoding="utf-8")
    assert main(["translate", "--run", str(trained_run), "--input", str(source)]) == 0
    assert not system.stdout.closed
    print("still open")
    assert capsys.readouterr().out.splitlines()[-1] == "still open"


def test_a_damaged_model_file_is_one_line_naming_it(trained_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("shards"))
    model = run / "model.keras"
    model.write_bytes(model.read_bytes()[:1000])  # a copy cut short
    done = subprocess.run(
        [sys.executable, "-m", "s2s", "translate", "--run", str(run)],
        input="你好！\n",
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"error: {model}: cannot read the model" in done.stderr
