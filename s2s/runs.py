"""The run folder: everything one training run reads and writes, under one directory.

runs/<pair>/
  config.yaml                 the config the run was started with
  data/{train,dev,test}.tsv   the split; data/cleaning.json what cleaning dropped
  spm/{src,tgt}.model         SentencePiece models (training split only)
  checkpoints/                last.weights.h5 (+ optimizer), best.weights.h5, state.json,
                              epoch-NNN.weights.h5 for the last train.average_last epochs
  model.keras                 the best model, loadable with keras.saving.load_model
  logs/train.csv, logs/tensorboard/
  eval/test.json, eval/test.hyp.txt
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from s2s.config import ConfigError, read_yaml, save_config


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
    def last_weights(self) -> Path:
        return self.checkpoints / "last.weights.h5"

    @property
    def best_weights(self) -> Path:
        return self.checkpoints / "best.weights.h5"

    def epoch_weights(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch-{epoch:03d}.weights.h5"

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
_FIXED_SECTIONS = ("data", "tokenizer", "model")


def check_resumable(paths: RunPaths, config: dict) -> None:
    """Refuse to continue a run whose data, tokenizer or model settings differ from ``config``."""
    if not paths.config.exists():
        return
    saved = read_yaml(paths.config)
    changed = [s for s in _FIXED_SECTIONS if saved.get(s) != config.get(s)]
    if changed:
        raise ConfigError(
            f"{paths.root} holds a run with different {', '.join(changed)} settings; "
            f"remove it or choose another folder with --run"
        )


def start(paths: RunPaths, config: dict) -> None:
    check_resumable(paths, config)
    save_config(config, paths.config)


def read_state(paths: RunPaths) -> dict:
    if paths.state.exists():
        return json.loads(paths.state.read_text(encoding="utf-8"))
    return {"epoch": 0, "elapsed_s": 0.0, "best_bleu": None, "best_epoch": None, "finished": False}


def write_state(paths: RunPaths, state: dict) -> None:
    paths.checkpoints.mkdir(parents=True, exist_ok=True)
    tmp = paths.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
    tmp.replace(paths.state)
