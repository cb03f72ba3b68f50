"""Several translation models searched as one (an ensemble), as OpenNMT-py's ``-model a b``,
fairseq's ``EnsembleModel`` and Marian's ``--models`` do it: at each step of the one search,
the next-token scores are the mean of the members' log-probabilities.

Members read the same source ids and write the same target ids, so they must share both
vocabularies (:func:`s2s.models.loading.load_members` refuses others, naming the runs). Each
member keeps its own encoder memory and decoder states; the attention shown is their mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf

from s2s.config.run_folder import RunPaths, read_state
from s2s.config.validation import ConfigError
from s2s.models.loading import load_trained


class Ensemble:
    """Members presented to :func:`s2s.decoding.loop.decode` as one model.

    ``encode(src)`` and ``decode_step(...)`` give tuples of the members' memories, keys, masks
    and states; the loop carries them as it carries one model's. An ensemble of one member
    returns that member's log-probabilities; of a model with itself, the same, bit for bit.
    """

    scores_are_log_probs = True  # the search uses the mean as it is

    def __init__(self, members: list):
        if not members:
            raise ValueError("an ensemble needs at least one model")
        self.members = list(members)

    @property
    def variables(self) -> list:
        """Every member's variables, member by member (for the export)."""
        return [v for member in self.members for v in member.variables]

    def encode(self, src):
        encoded = [member.encode(src) for member in self.members]
        memory, keys, mask, states = (tuple(part) for part in zip(*encoded, strict=True))
        return memory, keys, mask, states

    def decode_step(self, tokens, states, memory, keys, mask, beam: int = 1):
        """``tokens [N]`` -> the mean of the members' log-probabilities ``[N, V]``, their new
        states, and their mean attention weights ``[N, S]``."""
        total, new_states, weights = None, [], []
        for member, *parts in zip(self.members, states, memory, keys, mask, strict=True):
            logits, member_states, member_weights = member.decode_step(tokens, *parts, beam=beam)
            log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
            total = log_probs if total is None else total + log_probs
            new_states.append(member_states)
            weights.append(tf.cast(member_weights, tf.float32))
        count = float(len(self.members))
        return total / count, tuple(new_states), tf.add_n(weights) / count


def load_ensemble(
    run: str | Path,
    others: Sequence[str | Path] = (),
    checkpoints: int = 0,
    precision: str | None = None,
):
    """``(config, model, src_tokenizer, tgt_tokenizer)`` for translating with ``run`` alone or
    in an ensemble: with ``others`` (and the runs of its ``search.ensemble``), and with
    ``checkpoints=k`` its last ``k`` kept checkpoints in place of its final model. ``config``
    is ``run``'s (its search settings). One member: that model itself, not an ensemble.

    Members whose vocabularies differ from ``run``'s are refused, naming both runs.
    """
    config, model, src_tok, tgt_tok = load_trained(run, precision=precision)
    members = [model]
    if checkpoints:
        steps = read_state(RunPaths(Path(run)))["checkpoints"][-checkpoints:]
        if len(steps) < checkpoints:
            raise ConfigError(
                f"--checkpoints last:{checkpoints}: {run} keeps {len(steps)} checkpoint(s) "
                f"(train.average_last)"
            )
        members = [load_trained(run, weights=step, precision=precision)[1] for step in steps]
    for other in [*config["search"].get("ensemble", []), *others]:
        _, member, other_src, other_tgt = load_trained(other, precision=precision)
        for side, ours, theirs in (("source", src_tok, other_src), ("target", tgt_tok, other_tgt)):
            if not ours.same_vocabulary(theirs):
                raise ConfigError(
                    f"ensemble: {other} has another {side} vocabulary than {run}; members "
                    "must share both (train them on the same data stage, or with "
                    "train.init_from one run)"
                )
        members.append(member)
    return config, members[0] if len(members) == 1 else Ensemble(members), src_tok, tgt_tok
