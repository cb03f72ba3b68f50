"""Shared fixtures: the real corpus slice, a tiny config, a tiny model trained through the real
stages (once per session)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from s2s.config import load_config
from tests.helpers import TINY, corpus_dir


@pytest.fixture(scope="session")
def corpus_file() -> Path:
    path = corpus_dir() / "tatoeba-cmn-eng" / "cmn.txt"
    if not path.exists():
        pytest.fail(f"the test corpus is missing: {path} (set S2S_CORPUS_DIR)")
    return path


@pytest.fixture
def tiny_config() -> dict:
    return load_config("zh-en", overrides=TINY)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, corpus_file) -> Path:
    """A tiny model trained for two short epochs on 2,500 real pairs, through the real stages."""
    from s2s.training.runner import train

    run = tmp_path_factory.mktemp("run") / "zh-en"
    train(load_config("zh-en", overrides=TINY), run, corpus_file, log=lambda *_: None)
    return run
