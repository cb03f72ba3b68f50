"""Load a config: the defaults, then a recipe (or a file), then ``--set section.key=value``.

A config is a plain nested ``dict``. ``defaults.yaml`` (package data, next to this module) holds
every key with its default; a recipe, ``<src>-<tgt>.yaml`` in the repository's ``data/`` folder
(shipped in the package as ``s2s/recipes``), holds what a pair changes. Overrides are parsed as
YAML scalars, so ``--set train.epochs=2`` gives an int and ``--set search.alpha=0.8`` a float.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import yaml

from s2s.config.validation import ConfigError, check_known, coerce_types, validate

PACKAGE = resources.files("s2s")
DEFAULTS = PACKAGE / "config" / "defaults.yaml"
RECIPES = PACKAGE / "recipes"  # the repository's data/ folder: recipes and the corpus manifest


def merge(base: dict, update: dict) -> dict:
    """Deep-merge ``update`` into a copy of ``base``; dicts merge, other values replace."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: Path | Traversable) -> dict:
    """A YAML file holding a mapping; errors name the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {path}") from e
    except IsADirectoryError as e:
        raise ConfigError(f"{path} is a folder, not a config file") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def apply_override(config: dict, assignment: str) -> dict:
    """Apply one ``section.key=value`` override; unknown keys are an error (typos fail loudly)."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r}: expected section.key=value")
    dotted, raw = assignment.split("=", 1)
    parts = dotted.strip().split(".")
    node = config
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"override {assignment!r}: no section {'.'.join(parts[: i + 1])!r}")
        node = node[part]
    if parts[-1] not in node:
        known = ", ".join(sorted(node))
        raise ConfigError(f"override {assignment!r}: unknown key {dotted!r} (known here: {known})")
    try:
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override {assignment!r}: the value is not valid YAML: {e}") from None
    return config


@functools.cache
def _defaults() -> dict:
    return read_yaml(DEFAULTS)


def defaults() -> dict:
    """Every key with its default (``s2s/config/defaults.yaml``); a fresh copy each call."""
    return copy.deepcopy(_defaults())


def recipes() -> list[str]:
    """The language pairs that have a recipe (``zh-en``, ``en-zh``, ...)."""
    return sorted(
        p.name[:-5] for p in RECIPES.iterdir() if p.name.endswith(".yaml") and "-" in p.name
    )


def recipe_path(lang: str) -> Traversable:
    """The recipe of ``lang`` (``zh-en`` -> ``data/zh-en.yaml``), refused when there is none."""
    path = RECIPES / f"{lang}.yaml"
    if "-" not in lang or not path.is_file():
        raise ConfigError(f"no recipe for language pair {lang!r} (have: {', '.join(recipes())})")
    return path


def load_config(
    lang: str | None = None,
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> dict:
    """Defaults, then the pair's recipe (``lang``) or the file ``path``, then the overrides.

    Everything is checked here, before any work starts: unknown keys in the file or the
    overrides, numbers, and every enumerated value (:mod:`s2s.config.choices`).
    """
    base = defaults()
    config = copy.deepcopy(base)
    source = Path(path) if path is not None else recipe_path(lang) if lang is not None else None
    if source is not None:
        update = read_yaml(source)
        check_known(base, update, str(source))
        config = merge(config, update)
    for assignment in overrides:
        apply_override(config, assignment)
    coerce_types(base, config)
    validate(config)
    return config


def save_config(config: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False, allow_unicode=True)
