"""A run's models, built or loaded: the translation model it trains, its trained weights in the
precision search asks for, and language models (for fusion and sampling).
"""

from __future__ import annotations

from pathlib import Path

import keras

from s2s.config.run_folder import (
    RunError,
    RunPaths,
    data_paths,
    read_config,
    read_state,
    with_tuned,
)
from s2s.config.validation import ConfigError, check_choices
from s2s.models import precision as precisions
from s2s.models.language_model import RecurrentLM
from s2s.models.language_model import from_config_dict as lm_from_config
from s2s.models.seq2seq import Seq2Seq
from s2s.text.tokenizer import Tokenizer


def build_model(config: dict, src_tok: Tokenizer, tgt_tok: Tokenizer) -> Seq2Seq:
    """The run's model with every weight created (untrained)."""
    model = Seq2Seq.from_config_dict(config["model"], src_tok.vocab_size, tgt_tok.vocab_size)
    model.build_from_config({})
    return model


def last_checkpoint(paths: RunPaths) -> Path:
    """The weights of the last saved step (``state.json`` names it)."""
    return paths.step_weights(read_state(paths)["step"])


def load_trained(run_dir: str | Path, weights: str | int = "best", precision: str | None = None):
    """``(config, model, src_tokenizer, tgt_tokenizer)`` of a trained run; ``config`` holds the
    search settings the run chose on dev.

    ``weights``: ``best`` (``model.keras`` once the run finished, else the best checkpoint),
    ``last`` (the last checkpoint) or a step (the checkpoint of that step, if it is kept).
    ``precision`` (default: the run's ``search.precision``): ``float32``, or ``train`` for the
    model in the precision it trained in (:func:`in_precision`).
    """
    paths = RunPaths(Path(run_dir))
    config = with_tuned(read_config(paths), read_state(paths))
    if precision is not None:
        config = {**config, "search": {**config["search"], "precision": precision}}
        check_choices(config)
    src_tok, tgt_tok = tokenizer(paths.spm("src")), tokenizer(paths.spm("tgt"))
    if weights == "best" and paths.model.exists():
        model = read_file(paths.model, "the model", keras.saving.load_model, compile=False)
    else:
        model = build_model(config, src_tok, tgt_tok)
        if isinstance(weights, int):
            path = paths.step_weights(weights)
        else:
            path = paths.best_weights if weights == "best" else last_checkpoint(paths)
        if not path.exists():
            raise RunError(f"{path} does not exist: the run has no checkpoint yet")
        read_file(path, "the checkpoint", model.load_weights)
    return config, in_precision(model, config, src_tok, tgt_tok), src_tok, tgt_tok


def read_file(path: Path, what: str, read, *args, **kwargs):
    """``read(path, ...)``, a file a run wrote; a damaged one is refused naming it."""
    try:
        return read(path, *args, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunError(f"{path}: cannot read {what} ({type(e).__name__}: {e})") from e


def tokenizer(path: Path) -> Tokenizer:
    """A run's SentencePiece model, refused naming the file when missing or damaged."""
    if not path.exists():
        raise RunError(f"{path} does not exist: the run has no SentencePiece model yet")
    return read_file(path, "the SentencePiece model", Tokenizer)


def in_precision(model: Seq2Seq, config: dict, src_tok: Tokenizer, tgt_tok: Tokenizer):
    """The model search runs. A loaded model computes in float32 whatever it trained in (Keras
    rebuilds its layers under the global policy). With ``search.precision: train`` it is copied
    into a model built under :func:`s2s.precisions.decoding_policy`: weights stored and products
    computed in the training precision (bfloat16 on CPUs with AVX512-BF16); log-probabilities
    and scores stay float32."""
    policy = precisions.decoding_policy(config["train"]["precision"])
    if config["search"]["precision"] == "float32" or policy == "float32":
        return model
    with precisions.dtype_policy(policy):
        copy = build_model(config, src_tok, tgt_tok)
    copy.set_weights(model.get_weights())
    return copy


def load_language_model(run_dir: str | Path) -> tuple[dict, RecurrentLM, Tokenizer]:
    """``(config, model, tokenizer)`` of a trained language model run (its best weights)."""
    paths = RunPaths(Path(run_dir))
    config = read_config(paths)
    if config["lm"]["side"] is None:
        raise ConfigError(f"{run_dir} is not a language model run (its lm.side is unset)")
    side_tok = tokenizer(data_paths(config, paths).spm(config["lm"]["side"]))
    if paths.model.exists():
        model = read_file(paths.model, "the model", keras.saving.load_model, compile=False)
        return config, model, side_tok
    model = lm_from_config(config["lm"], config["model"]["cell"], side_tok.vocab_size)
    if not paths.best_weights.exists():
        raise RunError(f"{paths.best_weights} does not exist: the run has no checkpoint")
    read_file(paths.best_weights, "the checkpoint", model.load_weights)
    return config, model, side_tok


def fusion_model(search: dict, tgt_tok: Tokenizer) -> RecurrentLM | None:
    """The language model of ``search.lm_run`` when ``search.lm_weight`` is set, checked to
    share the translation model's target vocabulary."""
    if not search.get("lm_weight"):
        return None
    _, lm, lm_tok = load_language_model(search["lm_run"])
    if lm_tok.serialized() != tgt_tok.serialized():
        raise ConfigError(
            f"search.lm_run {search['lm_run']}: its vocabulary is not this model's target "
            "vocabulary (train it with --set lm.data_from=<the translation run>)"
        )
    return lm
