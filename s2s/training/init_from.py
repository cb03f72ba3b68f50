"""Start a run from a trained one (``train.init_from``): fine-tuning and domain adaptation.

The new run takes the parent's weights and, by default, its SentencePiece models, so that every
row of every embedding means the same piece (``train.init_vocab: parent``). With
``init_vocab: update`` the run trains SentencePiece models of its own corpus, and the rows of
pieces both vocabularies hold are copied from the parent, bit for bit; the others start as a new
model's do. ``train.init_reset`` says what starts fresh: Adam's state and the schedule
(``optimizer``, the default), or nothing (they continue from the parent's last checkpoint).

A parent whose model differs in shape is refused before any work, naming the key.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from s2s.config.run_folder import RunPaths, data_paths, read_config, read_state
from s2s.config.validation import ConfigError
from s2s.models.loading import last_checkpoint, read_file
from s2s.text.tokenizer import Tokenizer

# The keys that give a model its weights' shapes (dropout and the like may change).
SHAPE_KEYS = {
    "model": (
        "cell", "embedding_dim", "encoder_units", "encoder_layers", "decoder_layers",
        "attention", "attention_dim", "input_feeding", "bridge", "tie_embeddings",
    ),
    "lm": ("embedding_dim", "units", "layers", "tie_embeddings", "side"),
}  # fmt: skip


@dataclass
class Parent:
    """The run ``train.init_from`` names, read and checked against the new run's config."""

    paths: RunPaths
    config: dict
    state: dict

    @classmethod
    def of(cls, config: dict) -> Parent | None:
        """The parent of ``config`` (None without ``train.init_from``), refused when its model
        has other shapes than ``config``'s, naming the key."""
        folder = config["train"]["init_from"]
        if folder is None:
            return None
        paths = RunPaths(Path(folder))
        parent = cls(paths, read_config(paths), read_state(paths))
        if not parent.state["step"]:
            raise ConfigError(f"train.init_from: {folder} has not trained yet (no checkpoint)")
        if config["lm"]["data_from"]:
            raise ConfigError(
                "train.init_from and lm.data_from: a language model started from a parent reads "
                "its own data stage with the parent's vocabulary; drop lm.data_from"
            )
        if config["lm"]["side"]:  # a language model: its lm section, and the cell it uses
            keys = [("lm", key) for key in SHAPE_KEYS["lm"]] + [("model", "cell")]
        else:
            keys = [("model", key) for key in SHAPE_KEYS["model"]] + [("lm", "side")]
        for section, key in keys:
            ours, theirs = config[section][key], parent.config[section][key]
            if ours != theirs:
                raise ConfigError(
                    f"train.init_from: {section}.{key} is {ours!r} here and {theirs!r} in "
                    f"{folder}: a model starts only from one of its own shape"
                )
        if config["train"]["init_vocab"] == "parent":
            for side in ("src", "tgt"):
                if not paths.spm(side).exists():
                    raise ConfigError(f"train.init_from: {folder} has no {paths.spm(side)}")
        return parent

    def adopt(self, config: dict) -> dict:
        """``config`` with the parent's tokenizer settings under ``init_vocab: parent`` (the
        parent's SentencePiece models are the run's)."""
        if config["train"]["init_vocab"] != "parent":
            return config
        return {**config, "tokenizer": self.config["tokenizer"]}

    def give_vocabularies(self, paths: RunPaths) -> None:
        """Copy the parent's SentencePiece models into a run that has none yet."""
        for side in ("src", "tgt"):
            for suffix in (".model", ".vocab", ".rules.tsv"):
                source = self.paths.spm(side).with_suffix(suffix)
                target = paths.spm(side).with_suffix(suffix)
                if source.exists() and not paths.spm(side).exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, target)

    def record(self) -> dict:
        """What the run's ``state.json`` and reports say of its parent."""
        text = self.paths.config.read_bytes()
        return {
            "path": str(self.paths.root.resolve()),
            "step": self.state["step"],
            "config_sha256": hashlib.sha256(text).hexdigest()[:16],
        }


def initialise(model: keras.Model, parent: Parent, config: dict, tokenizers: dict, build) -> None:
    """Give ``model`` (built and compiled) the parent's weights.

    ``tokenizers``: the new run's ``{"src", "tgt"}`` tokenizers (a language model: ``{"lm"}``);
    ``build``: makes an untrained model of the parent's config and vocabularies, into which its
    weights are read. ``init_reset: nothing`` reads the parent's last checkpoint, Adam's state
    included; otherwise its final model (or best checkpoint) without the optimizer.
    """
    theirs_tok = {side: _parent_tokenizer(parent, side) for side in tokenizers}
    same = all(tokenizers[side].same_vocabulary(theirs_tok[side]) for side in tokenizers)
    if config["train"]["init_reset"] == "nothing":
        if not same:
            raise ConfigError("train.init_reset: nothing needs train.init_vocab: parent")
        read_file(last_checkpoint(parent.paths), "the parent's last checkpoint", model.load_weights)
        return
    source = build(theirs_tok)
    weights = parent.paths.model if parent.paths.model.exists() else parent.paths.best_weights
    read_file(weights, "the parent's weights", source.load_weights)
    if same:
        model.set_weights(source.get_weights())
        return
    vocabulary = {id(v) for v, _, _ in model.vocabulary_weights()}
    for ours, theirs in zip(model.weights, source.weights, strict=True):
        if id(ours) not in vocabulary:
            ours.assign(theirs.numpy())
    for (ours, side, axis), (theirs, _, _) in zip(
        model.vocabulary_weights(), source.vocabulary_weights(), strict=True
    ):
        ours.assign(
            shared_rows(
                ours.numpy(), theirs.numpy(), axis, *_id_map(tokenizers[side], theirs_tok[side])
            )
        )


def _parent_tokenizer(parent: Parent, side: str) -> Tokenizer:
    side = parent.config["lm"]["side"] if side == "lm" else side
    return Tokenizer(data_paths(parent.config, parent.paths).spm(side))


def _id_map(ours: Tokenizer, theirs: Tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """Ids of the pieces both vocabularies hold: ``(ids in ours, ids in theirs)``."""
    index = {theirs.sp.id_to_piece(i): i for i in range(theirs.vocab_size)}
    pairs = [
        (i, index[piece])
        for i in range(ours.vocab_size)
        if (piece := ours.sp.id_to_piece(i)) in index
    ]
    return np.array([a for a, _ in pairs], int), np.array([b for _, b in pairs], int)


def shared_rows(ours: np.ndarray, theirs: np.ndarray, axis: int, ours_ids, theirs_ids):
    """``ours`` with its rows (along ``axis``) of shared pieces replaced by ``theirs``'."""
    out = np.array(ours, copy=True)
    index = [slice(None)] * out.ndim
    source = [slice(None)] * out.ndim
    index[axis], source[axis] = ours_ids, theirs_ids
    out[tuple(index)] = theirs[tuple(source)]
    return out
