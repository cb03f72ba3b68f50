"""The run folder: everything one run reads and writes, under one directory.

runs/<pair>/
  config.yaml                 the config the run was started with
  data/                       the data stage: train.tsv, the dev and test sets, summary.json,
                              cleaning.json, overlap.json (see :mod:`s2s.data.stage`)
  spm/{src,tgt}.model         SentencePiece models (trained on a sample of the training pairs)
  shards/                     the training pairs as piece ids (train-NNNNN.tfrecord, index.json)
  checkpoints/                step-N.weights.h5 (+ optimizer) and step-N.input.* (the input
                              stream's position) for the last train.average_last intervals,
                              best.weights.h5, state.json (names the last checkpoint)
  model.keras                 the best model, loadable with keras.saving.load_model
  logs/train.csv, logs/tensorboard/
  eval/<set>.json, eval/<set>.hyp.txt

The config half (``config.yaml``, what may change on resume) and the progress half
(``state.json``) are read and written here; the stages own what goes into the folders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from s2s.config import choices
from s2s.config.loading import defaults, merge, read_yaml, save_config
from s2s.config.validation import ConfigError, coerce_types


class RunError(ValueError):
    """A run folder that is missing a file or holds one that cannot be read (named)."""


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
        raise RunError(
            f"{paths.root} is not a run folder (no config.yaml); train one with: "
            "s2s train --lang zh-en --run " + str(paths.root)
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
    if "best_bleu" in saved:  # the key's name before language models shared the runner
        saved.setdefault("best_objective", saved.pop("best_bleu"))
    return {**_fresh_state(), **saved}


def _fresh_state() -> dict:
    return {
        "step": 0,  # steps trained, as of the checkpoint named by ``checkpoints[-1]``
        "evals": 0,  # intervals scored
        "elapsed_s": 0.0,
        "checkpoints": [],  # steps whose checkpoints are kept, oldest first
        "best_objective": None,  # the best dev objective: BLEU, or minus the NLL of an LM
        "best_step": None,
        "best_eval": None,
        "stale": 0,  # intervals since the best
        "finished": False,
        "tuned": None,  # search settings chosen on dev: {"beam_size", "alpha", "dev_bleu"}
        "trained_on": [],  # per session: the step it started at, precision, CPU, threads
        "parent": None,  # train.init_from: the run started from (path, step, config hash)
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
