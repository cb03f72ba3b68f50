"""Configuration: one YAML file per language pair, overridable with ``--set section.key=value``.

A config is a plain nested ``dict``. ``data/defaults.yaml`` holds every key with its default;
``data/<src>-<tgt>.yaml`` holds what a pair changes. Overrides are parsed as YAML scalars, so
``--set train.epochs=2`` gives an int and ``--set search.alpha=0.8`` a float.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "data"


class ConfigError(ValueError):
    """A config file or override that cannot be used."""


def merge(base: dict, update: dict) -> dict:
    """Deep-merge ``update`` into a copy of ``base``; dicts merge, other values replace."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {path}") from e
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
    node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
    return config


def coerce_types(defaults: dict, config: dict, prefix: str = "") -> dict:
    """Make numbers numbers where the default is one: YAML reads ``1e-3`` as a string."""
    for key, default in defaults.items():
        value = config.get(key)
        if isinstance(default, dict) and isinstance(value, dict):
            coerce_types(default, value, f"{prefix}{key}.")
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise ConfigError(f"{prefix}{key} must be a number, not {value!r}") from None
            if isinstance(default, float) and type(value) is int:
                value = float(value)
            config[key] = value
    return config


@functools.cache
def _defaults() -> dict:
    return read_yaml(CONFIG_DIR / "defaults.yaml")


def defaults() -> dict:
    """Every key with its default (``data/defaults.yaml``); a fresh copy each call."""
    return copy.deepcopy(_defaults())


def load_config(
    lang: str | None = None,
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> dict:
    """Defaults, then the pair's file (``data/<lang>.yaml`` or ``path``), then the overrides."""
    base = defaults()
    config = copy.deepcopy(base)
    if path is None and lang is not None:
        path = CONFIG_DIR / f"{lang}.yaml"
        if not path.exists():
            pairs = sorted(p.stem for p in CONFIG_DIR.glob("*-*.yaml"))
            raise ConfigError(f"no config for language pair {lang!r} (have: {', '.join(pairs)})")
    if path is not None:
        config = merge(config, read_yaml(Path(path)))
    for assignment in overrides:
        apply_override(config, assignment)
    coerce_types(base, config)
    validate(config)
    return config


CELLS = ("lstm", "gru", "mgu", "rnn")


def validate(config: dict) -> None:
    """Catch the mistakes that would otherwise surface deep inside TensorFlow."""
    src, tgt = config["data"]["src_lang"], config["data"]["tgt_lang"]
    if not src or not tgt or src == tgt:
        raise ConfigError(f"data.src_lang and data.tgt_lang must differ (got {src!r}, {tgt!r})")
    model = config["model"]
    if model["attention"] not in ("dot", "general", "additive"):
        raise ConfigError(
            f"model.attention must be dot, general or additive, not {model['attention']!r}"
        )
    if model["cell"] not in CELLS:
        raise ConfigError(f"model.cell must be one of {', '.join(CELLS)}, not {model['cell']!r}")
    if model["bridge"] not in ("final", "projection", "zeros"):
        raise ConfigError(f"model.bridge must be final, projection or zeros: {model['bridge']!r}")
    if model["tie_embeddings"] and model["attention_dim"] != model["embedding_dim"]:
        raise ConfigError(
            "model.tie_embeddings needs model.attention_dim == model.embedding_dim "
            f"({model['attention_dim']} != {model['embedding_dim']})"
        )
    if min(model["encoder_layers"], model["decoder_layers"]) < 1:
        raise ConfigError("model.encoder_layers and model.decoder_layers must be at least 1")
    if config["train"]["lr_schedule"] not in ("constant", "inverse_sqrt", "plateau"):
        raise ConfigError("train.lr_schedule must be constant, inverse_sqrt or plateau")
    if config["search"]["beam_size"] < 1:
        raise ConfigError("search.beam_size must be at least 1")
    boundaries = config["train"]["bucket_boundaries"]
    if list(boundaries) != sorted(set(boundaries)):
        raise ConfigError("train.bucket_boundaries must be strictly increasing")


def save_config(config: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False, allow_unicode=True)


def get(config: dict, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return node
