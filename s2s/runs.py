"""The run folder: everything one training run reads and writes, under one directory.

runs/<pair>/
  config.yaml                 the config the run was started with
  data/{train,dev,test}.tsv   the split; data/cleaning.json what cleaning dropped
  spm/{src,tgt}.model         SentencePiece models (trained on a sample of the training pairs)
  shards/                     the training pairs as piece ids (train-NNNNN.tfrecord, index.json)
  checkpoints/                step-N.weights.h5 (+ optimizer) and step-N.input.* (the input
                              stream's position) for the last train.average_last intervals,
                              best.weights.h5, state.json (names the last checkpoint)
  model.keras                 the best model, loadable with keras.saving.load_model
  logs/train.csv, logs/tensorboard/
  eval/test.json, eval/test.hyp.txt
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras

from s2s import choices, distribute
from s2s.config import (
    ConfigError,
    check_choices,
    coerce_types,
    defaults,
    merge,
    read_yaml,
    save_config,
)
from s2s.language_model import RecurrentLM
from s2s.language_model import from_config_dict as lm_from_config
from s2s.model import Seq2Seq
from s2s.tokenizer import Tokenizer


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def cleaning(self) -> Path:
        return self.data / "cleaning.json"

    def spm(self, side: str) -> Path:
        return self.root / "spm" / f"{side}.model"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def shards(self) -> Path:
        return self.root / "shards"

    @property
    def best_weights(self) -> Path:
        return self.checkpoints / "best.weights.h5"

    def step_weights(self, step: int) -> Path:
        """Weights and optimizer state after ``step`` steps."""
        return self.checkpoints / f"step-{step:09d}.weights.h5"

    def step_input(self, step: int) -> Path:
        """The prefix of the input stream's position after ``step`` steps."""
        return self.checkpoints / f"step-{step:09d}.input"

    @property
    def state(self) -> Path:
        return self.checkpoints / "state.json"

    @property
    def model(self) -> Path:
        return self.root / "model.keras"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def eval(self) -> Path:
        return self.root / "eval"


# Sections whose change makes an existing run's data, vocabularies or weights meaningless.
_FIXED_SECTIONS = ("data", "tokenizer", "model", "lm")


def read_config(paths: RunPaths) -> dict:
    """The run's saved config merged over today's defaults.

    A run made before a key existed gets that key's default, so resuming and loading keep
    working when the defaults grow (a new key's default must keep what older code did).
    """
    if not paths.config.exists():
        raise FileNotFoundError(
            f"{paths.root} is not a run folder (no config.yaml); "
            f"train one with: make train LANG=zh-en"
        )
    base = defaults()
    return coerce_types(base, merge(base, read_yaml(paths.config)))


def check_resumable(paths: RunPaths, config: dict) -> None:
    """Refuse to continue a run whose data, tokenizer or model settings differ from ``config``."""
    if not paths.config.exists():
        return
    saved = read_config(paths)
    changed = [s for s in _FIXED_SECTIONS if _results_of(saved, s) != _results_of(config, s)]
    if changed:
        raise ConfigError(
            f"{paths.root} holds a run with different {', '.join(changed)} settings; "
            f"remove it or choose another folder with --run"
        )


def _results_of(config: dict, section: str) -> dict:
    """The keys of ``config[section]`` that can change what a run produces."""
    speed_only = choices.SPEED_ONLY.get(section, ())
    return {k: v for k, v in config[section].items() if k not in speed_only}


def start(paths: RunPaths, config: dict) -> None:
    check_resumable(paths, config)
    save_config(config, paths.config)


def read_state(paths: RunPaths) -> dict:
    """``state.json`` over the fresh state (keys added since a run was made get their start)."""
    saved = json.loads(paths.state.read_text(encoding="utf-8")) if paths.state.exists() else {}
    return {**_fresh_state(), **saved}


def _fresh_state() -> dict:
    return {
        "step": 0,  # steps trained, as of the checkpoint named by ``checkpoints[-1]``
        "evals": 0,  # intervals scored
        "elapsed_s": 0.0,
        "checkpoints": [],  # steps whose checkpoints are kept, oldest first
        "best_bleu": None,
        "best_step": None,
        "best_eval": None,
        "stale": 0,  # intervals since the best
        "finished": False,
        "tuned": None,  # search settings chosen on dev: {"beam_size", "alpha", "dev_bleu"}
    }


def with_tuned(config: dict, state: dict) -> dict:
    """``config`` with the search settings the run chose on dev (``state["tuned"]``), if any."""
    tuned = state.get("tuned")
    if not tuned:
        return config
    chosen = {"alpha": tuned["alpha"]}
    if "beam_size" in tuned:  # runs from before tune_beam chose the alpha alone
        chosen["beam_size"] = tuned["beam_size"]
    return {**config, "search": {**config["search"], **chosen}}


def write_state(paths: RunPaths, state: dict) -> None:
    paths.checkpoints.mkdir(parents=True, exist_ok=True)
    tmp = paths.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
    tmp.replace(paths.state)


# -- the model a run trains -------------------------------------------------------------------


def build_model(config: dict, src_tok: Tokenizer, tgt_tok: Tokenizer) -> Seq2Seq:
    """The run's model with every weight created (untrained)."""
    model = Seq2Seq.from_config_dict(config["model"], src_tok.vocab_size, tgt_tok.vocab_size)
    model.build_from_config({})
    return model


def last_checkpoint(paths: RunPaths) -> Path:
    """The weights of the last saved step (``state.json`` names it)."""
    return paths.step_weights(read_state(paths)["step"])


def load_trained(run_dir: str | Path, weights: str = "best", precision: str | None = None):
    """``(config, model, src_tokenizer, tgt_tokenizer)`` of a trained run; ``config`` holds the
    search settings the run chose on dev.

    ``weights``: ``best`` (``model.keras`` once the run finished, else the best checkpoint) or
    ``last`` (the last checkpoint). ``precision`` (default: the run's ``search.precision``):
    ``float32``, or ``train`` for the model in the precision it trained in (:func:`in_precision`).
    """
    paths = RunPaths(Path(run_dir))
    config = with_tuned(read_config(paths), read_state(paths))
    if precision is not None:
        config = {**config, "search": {**config["search"], "precision": precision}}
        check_choices(config)
    src_tok, tgt_tok = Tokenizer(paths.spm("src")), Tokenizer(paths.spm("tgt"))
    if weights == "best" and paths.model.exists():
        model = keras.saving.load_model(paths.model, compile=False)
    else:
        model = build_model(config, src_tok, tgt_tok)
        path = paths.best_weights if weights == "best" else last_checkpoint(paths)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: the run has no checkpoint yet")
        model.load_weights(path)
    return config, in_precision(model, config, src_tok, tgt_tok), src_tok, tgt_tok


def in_precision(model: Seq2Seq, config: dict, src_tok: Tokenizer, tgt_tok: Tokenizer):
    """The model search runs. A loaded model computes in float32 whatever it trained in (Keras
    rebuilds its layers under the global policy). With ``search.precision: train`` it is copied
    into a model built under :func:`s2s.distribute.decoding_policy`: weights stored and products
    computed in the training precision (bfloat16 on CPUs with AVX512-BF16); log-probabilities
    and scores stay float32."""
    policy = distribute.decoding_policy(config["train"]["precision"])
    if config["search"]["precision"] == "float32" or policy == "float32":
        return model
    with distribute.dtype_policy(policy):
        copy = build_model(config, src_tok, tgt_tok)
    copy.set_weights(model.get_weights())
    return copy


def data_paths(config: dict, paths: RunPaths) -> RunPaths:
    """Where a run's data, SentencePiece models and shards live: its own folder, or for a
    language model with ``lm.data_from`` that translation run's (the same vocabulary)."""
    source = config["lm"]["data_from"]
    if source is None:
        return paths
    other = RunPaths(Path(source))
    if not (other.spm("src").exists() and other.spm("tgt").exists()):
        raise ConfigError(f"lm.data_from: {source} has no SentencePiece models (spm/)")
    return other


def load_language_model(run_dir: str | Path) -> tuple[dict, RecurrentLM, Tokenizer]:
    """``(config, model, tokenizer)`` of a trained language model run (its best weights)."""
    paths = RunPaths(Path(run_dir))
    config = read_config(paths)
    if config["lm"]["side"] is None:
        raise ConfigError(f"{run_dir} is not a language model run (its lm.side is unset)")
    tokenizer = Tokenizer(data_paths(config, paths).spm(config["lm"]["side"]))
    if paths.model.exists():
        return config, keras.saving.load_model(paths.model, compile=False), tokenizer
    model = lm_from_config(config["lm"], config["model"]["cell"], tokenizer.vocab_size)
    if not paths.best_weights.exists():
        raise FileNotFoundError(f"{paths.best_weights} does not exist: the run has no checkpoint")
    model.load_weights(paths.best_weights)
    return config, model, tokenizer


def fusion_model(search: dict, tgt_tok: Tokenizer) -> RecurrentLM | None:
    """The language model of ``search.lm_run`` when ``search.lm_weight`` is set, checked to
    share the translation model's target vocabulary."""
    if not search.get("lm_weight"):
        return None
    _, lm, tokenizer = load_language_model(search["lm_run"])
    if tokenizer.serialized() != tgt_tok.serialized():
        raise ConfigError(
            f"search.lm_run {search['lm_run']}: its vocabulary is not this model's target "
            "vocabulary (train it with --set lm.data_from=<the translation run>)"
        )
    return lm
