"""The run's data stage, the same for ``s2s prepare``, ``s2s train`` and language models: the
data folder (:mod:`s2s.data.splitting`), the SentencePiece models and the shards of piece ids.
Each step is skipped when its output is complete, so a rerun (or a resumed run) reuses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from s2s.config.run_folder import RunPaths
from s2s.config.validation import ConfigError
from s2s.data.parallel import worker_count
from s2s.data.prepared import count_train, iter_train, load_eval_sets, sample_train
from s2s.data.readers import CHUNK_LINES
from s2s.data.sets import EvalSet
from s2s.data.shards import ShardIndex, write_shards
from s2s.data.splitting import prepare_data_folder
from s2s.text.tokenizer import Tokenizer, train_sentencepiece


@dataclass
class PreparedData:
    """What the data stage leaves for training: the dev/test sets, both tokenizers, the shards."""

    sets: dict[str, EvalSet]  # "dev" (when there is one), then each test set
    src_tok: Tokenizer
    tgt_tok: Tokenizer
    shards: ShardIndex

    def tokenizer(self, side: str) -> Tokenizer:
        return self.src_tok if side == "src" else self.tgt_tok


def prepare(
    config: dict,
    paths: RunPaths,
    corpus: Path | None = None,
    log=print,
    *,
    fixed_shards: str | None = None,
) -> PreparedData:
    """Run (or reuse) every step of the data stage into ``paths``' folders.

    Shards built for another largest bucket (``train.bucket_boundaries``) are built again,
    unless ``fixed_shards`` says why they may not change (a run trained on them, or another
    run's shards): then the config is refused, naming the key and that reason.
    """
    prepare_data_folder(config, paths.data, corpus, log)
    sets = load_eval_sets(paths.data)
    src_tok, tgt_tok = prepare_tokenizers(config, paths)
    shards = prepare_shards(config, paths, src_tok, tgt_tok, log, fixed_shards)
    return PreparedData(sets, src_tok, tgt_tok, shards)


def fixed_shards(paths: RunPaths, data_at: RunPaths, state: dict) -> str | None:
    """Why the run's shards may not be built again for another largest bucket (None: they
    may): a language model reads another run's, or the run has trained on them already."""
    if data_at != paths:
        return f"they are lm.data_from {data_at.root}'s: use its train.bucket_boundaries"
    if state["step"]:
        return (
            f"the run has trained {state['step']:,} steps on them: keep its "
            "train.bucket_boundaries, or train another --run"
        )
    return None


def prepare_tokenizers(config: dict, paths: RunPaths) -> tuple[Tokenizer, Tokenizer]:
    """Train (once) and load the SentencePiece models, on a random sample of the training pairs
    (``tokenizer.sample_sentences``; all of them on a small corpus)."""
    if not all(paths.spm(side).exists() for side in ("src", "tgt")):
        seed = config["data"]["seed"]
        sample = sample_train(paths.data, config["tokenizer"]["sample_sentences"], seed)
        for side, sentences in zip(("src", "tgt"), sample, strict=True):
            train_sentencepiece(
                sentences,
                paths.spm(side).with_suffix(""),
                seed=seed,
                lang=config["data"][f"{side}_lang"],
                script=config["data"]["chinese_script"],
                **config["tokenizer"][side],
            )
    return Tokenizer(paths.spm("src")), Tokenizer(paths.spm("tgt"))


def max_pair_length(config: dict) -> int:
    """The longest pair (in pieces, the target's ``</s>`` counted) the largest bucket holds
    (as :attr:`s2s.data.pipeline.Buckets.max_length`)."""
    return config["train"]["bucket_boundaries"][-1] - 1


def prepare_shards(
    config: dict,
    paths: RunPaths,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    log=print,
    fixed_shards: str | None = None,
) -> ShardIndex:
    """Tokenise the training pairs into shards once per run (see :mod:`s2s.data.shards`);
    build them again for another largest bucket, or refuse (see :func:`prepare`)."""
    max_length = max_pair_length(config)
    index = ShardIndex.read(paths.shards)
    if index is not None and index.max_length != max_length:
        built = f"the shards in {paths.shards} hold pairs of at most {index.max_length} pieces"
        wanted = f"train.bucket_boundaries {config['train']['bucket_boundaries']} hold {max_length}"
        if fixed_shards is not None:
            raise ConfigError(f"{built}, but {wanted}; {fixed_shards}")
        log(f"{built}; {wanted}: building them again")
        index = None
    if index is None:
        total = count_train(paths.data)
        index = write_shards(
            iter_train(paths.data),
            src_tok,
            tgt_tok,
            paths.shards,
            max_length,
            total_pairs=total,
            seed=config["data"]["seed"],
            workers=worker_count(config["data"]["workers"], total, CHUNK_LINES),
        )
    if index.too_long:
        log(f"left out {index.too_long:,} training pairs longer than {max_length} pieces")
    return index
