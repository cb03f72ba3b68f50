"""What a config may hold: known keys, numbers where numbers go, one of the choices where
there are choices, and the combinations that cannot work. Checked before any work starts."""

from __future__ import annotations

import difflib
from typing import Any

from s2s.config import choices


class ConfigError(ValueError):
    """A config file or override that cannot be used."""


def get(config: dict, dotted: str) -> Any:
    """``config["a"]["b"]`` for ``"a.b"``."""
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return node


def coerce_types(defaults: dict, config: dict, prefix: str = "") -> dict:
    """Make numbers numbers where the default is one: YAML reads ``1e-3`` as a string. A key
    whose default is true or false takes nothing else (``maybe`` and ``1`` are errors)."""
    for key, default in defaults.items():
        value = config.get(key)
        if isinstance(default, dict) and isinstance(value, dict):
            coerce_types(default, value, f"{prefix}{key}.")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{prefix}{key} must be true or false, not {value!r}")
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


def check_known(defaults: dict, update: dict, source: str, prefix: str = "") -> None:
    """Refuse keys of ``update`` that ``defaults`` lacks (a typo would otherwise be ignored).

    Sections whose default is ``null`` (``data.columns``) take any keys.
    """
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in defaults:
            close = difflib.get_close_matches(str(key), [str(k) for k in defaults], n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else ""
            known = ", ".join(sorted(map(str, defaults)))
            raise ConfigError(f"{source}: unknown key {dotted!r}{hint} (known here: {known})")
        if isinstance(value, dict) and isinstance(defaults[key], dict):
            check_known(defaults[key], value, source, f"{dotted}.")
        elif isinstance(defaults[key], dict):
            raise ConfigError(f"{source}: {dotted} is a section, not a value ({value!r})")


def _list_of(value, kinds: tuple, least: float) -> bool:
    """Whether ``value`` is a list of numbers of ``kinds`` (booleans are not numbers here), each
    at least ``least``."""
    return isinstance(value, list) and all(
        isinstance(v, kinds) and not isinstance(v, bool) and v >= least for v in value
    )


def validate(config: dict) -> None:
    """Catch the mistakes that would otherwise surface deep inside TensorFlow, or after data
    preparation, SentencePiece and training."""
    check_choices(config)
    src, tgt = config["data"]["src_lang"], config["data"]["tgt_lang"]
    if not src or not tgt or src == tgt:
        raise ConfigError(f"data.src_lang and data.tgt_lang must differ (got {src!r}, {tgt!r})")
    model = config["model"]
    if model["tie_embeddings"] and model["attention_dim"] != model["embedding_dim"]:
        raise ConfigError(
            "model.tie_embeddings needs model.attention_dim == model.embedding_dim "
            f"({model['attention_dim']} != {model['embedding_dim']})"
        )
    for key in ("dropout", "word_dropout"):
        if not 0 <= model[key] < 1:
            raise ConfigError(f"model.{key} must be in [0, 1), not {model[key]}")
    if min(model["encoder_layers"], model["decoder_layers"]) < 1:
        raise ConfigError("model.encoder_layers and model.decoder_layers must be at least 1")
    train = config["train"]
    if train["eval_steps"] is not None and train["eval_steps"] < 1:
        raise ConfigError("train.eval_steps must be at least 1, or null (once an epoch)")
    if train["eval_minutes"] is not None and train["eval_minutes"] <= 0:
        raise ConfigError("train.eval_minutes must be positive, or null (no time interval)")
    if min(train["shuffle_buffer"], config["tokenizer"]["sample_sentences"]) < 1:
        raise ConfigError("train.shuffle_buffer and tokenizer.sample_sentences must be at least 1")
    tokenizer = config["tokenizer"]
    if tokenizer["sampling_alpha"] < 0:
        raise ConfigError(
            f"tokenizer.sampling_alpha must be 0 (off) or more, not {tokenizer['sampling_alpha']}"
        )
    if tokenizer["sampling_nbest"] != -1 and tokenizer["sampling_nbest"] < 2:
        raise ConfigError(
            "tokenizer.sampling_nbest must be -1 (all segmentations) or at least 2, not "
            f"{tokenizer['sampling_nbest']}"
        )
    if not 0 <= train["decay_from"] < 1:
        raise ConfigError(f"train.decay_from must be in [0, 1), not {train['decay_from']}")
    workers = config["data"]["workers"]
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(
            f"data.workers must be at least 1, or null (one per core), not {workers!r}"
        )
    alphas = config["search"]["tune_alpha"]
    if not _list_of(alphas, (int, float), least=0):
        raise ConfigError(f"search.tune_alpha must be a list of numbers >= 0, not {alphas!r}")
    beams = config["search"]["tune_beam"]
    if not _list_of(beams, (int,), least=1):
        raise ConfigError(f"search.tune_beam must be a list of beam sizes >= 1, not {beams!r}")
    if config["search"]["beam_size"] < 1:
        raise ConfigError("search.beam_size must be at least 1")
    lm = config["lm"]
    if lm["tie_embeddings"] and lm["units"] != lm["embedding_dim"]:
        raise ConfigError(
            f"lm.tie_embeddings needs lm.units == lm.embedding_dim "
            f"({lm['units']} != {lm['embedding_dim']})"
        )
    if lm["layers"] < 1:
        raise ConfigError("lm.layers must be at least 1")
    if config["search"]["lm_weight"] < 0:
        raise ConfigError("search.lm_weight must be 0 or more")
    if config["search"]["lm_weight"] and not config["search"]["lm_run"]:
        raise ConfigError("search.lm_weight needs search.lm_run (a language model run)")
    ensemble = config["search"]["ensemble"]
    if not isinstance(ensemble, list) or not all(isinstance(r, str) and r for r in ensemble):
        raise ConfigError(f"search.ensemble must be a list of run folders, not {ensemble!r}")
    init_from = config["train"]["init_from"]
    if init_from is not None and (not isinstance(init_from, str) or not init_from):
        raise ConfigError(f"train.init_from must be a run folder or null, not {init_from!r}")
    boundaries = config["train"]["bucket_boundaries"]
    if list(boundaries) != sorted(set(boundaries)):
        raise ConfigError("train.bucket_boundaries must be strictly increasing")


def check_choices(config: dict) -> None:
    """Every enumerated key holds one of its choices (``grid.cells``: each item does)."""
    for dotted, allowed in choices.BY_KEY.items():
        value = get(config, dotted)
        for item in value if isinstance(value, list) else [value]:
            if item not in allowed:
                names = ", ".join("null" if a is None else a for a in allowed)
                raise ConfigError(f"{dotted} must be one of {names}, not {item!r}")
