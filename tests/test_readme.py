"""The README is a manual that stays true: its configuration table states today's defaults,
its commands exist, and it stays short enough to read."""

from __future__ import annotations

import re

import yaml

from s2s.cli import commands
from s2s.config import defaults, get
from tests.helpers import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def default_claims() -> list[tuple[str, str]]:
    """``(key, value)`` of every README table row of the form ``| `section.key` | `value` |``."""
    return re.findall(r"^\| `([a-z_]+\.[a-z_.]+)` \| `([^`]*)` \|", README, flags=re.MULTILINE)


def test_every_default_the_readme_states_is_the_default():
    claims = default_claims()
    assert len(claims) >= 15
    wrong = [
        (key, value, get(defaults(), key))
        for key, value in claims
        if yaml.safe_load(value) != get(defaults(), key)
    ]
    assert not wrong, f"README defaults that defaults.yaml contradicts: {wrong}"


def test_the_check_catches_a_wrong_claim():
    assert yaml.safe_load("100000") != get(defaults(), "tokenizer.sample_sentences") * 10


def test_every_command_the_readme_lists_exists():
    listed = set(re.findall(r"^\| `s2s ([a-z]+)", README, flags=re.MULTILINE))
    known = set(commands())
    assert listed and listed <= known, listed - known
    assert known <= listed | {"lm"}, known - listed


def test_the_readme_is_a_manual_not_a_lab_notebook():
    assert len(README.splitlines()) < 350
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")
    assert (ROOT / "docs" / "experiments.md").exists()
