"""SentencePiece models for each side, trained on the training split only.

Ids are fixed across the project: 0 pad, 1 unk, 2 ``<s>``, 3 ``</s>``. SentencePiece's default
``nmt_nfkc`` rule would turn Chinese ``，！？`` into ASCII (and a Chinese model could then never
write the punctuation references use), so each model is trained with the rules of
:func:`s2s.text.normalize.normalize` for its language instead.

Those rules map one character at a time, so they cannot compose: NFKC of ``"Cafe\\u0301"`` is
``"Café"``, the rules leave it decomposed. Text is therefore always normalised before
:meth:`Tokenizer.encode`: with :func:`s2s.text.normalize.normalize` in Python, and with the
same steps as TensorFlow ops in an exported graph (:func:`s2s.serving.text_graph.normalize_text`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

from s2s.text.normalize import normalization_rules
from s2s.text.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID

__all__ = ["BOS_ID", "EOS_ID", "PAD_ID", "UNK_ID", "Tokenizer", "train_sentencepiece"]


def train_sentencepiece(
    sentences: Iterable[str],
    prefix: Path,
    model_type: str = "unigram",
    vocab_size: int = 8000,
    character_coverage: float = 1.0,
    seed: int = 1234,
    lang: str = "",
    script: str = "keep",
) -> Path:
    """Train on ``sentences`` of language ``lang``; writes ``<prefix>.model``, ``.vocab`` and
    ``.rules.tsv`` (its normalisation rules, ``script`` as in :func:`s2s.text.normalize.normalize`);
    returns the model path."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    rules = prefix.with_suffix(".rules.tsv")
    rules.write_text(normalization_rules(lang, script), encoding="utf-8")
    spm.set_random_generator_seed(seed)
    try:
        _train(sentences, prefix, model_type, vocab_size, character_coverage, rules)
    except RuntimeError as e:  # SentencePiece reports bad settings this way
        raise ValueError(
            f"SentencePiece could not train {prefix.name} ({model_type}, vocab_size={vocab_size}, "
            f"character_coverage={character_coverage}): {e}"
        ) from e
    return prefix.with_suffix(".model")


def _train(sentences, prefix, model_type, vocab_size, character_coverage, rules) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(sentences)),
        model_prefix=str(prefix),
        model_type=model_type,
        vocab_size=vocab_size,
        character_coverage=character_coverage,
        normalization_rule_tsv=str(rules),
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        hard_vocab_limit=False,  # a small corpus may not support the asked size
        num_threads=2,
        minloglevel=2,
    )


class Tokenizer:
    """Encode text to ids (no ``<s>``/``</s>``; the pipeline adds them) and decode ids to text."""

    def __init__(self, model_path: str | Path):
        self.path = Path(model_path)
        self.sp = spm.SentencePieceProcessor(model_file=str(self.path))

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.sp.encode(list(texts), out_type=int)

    def pieces(self, text: str) -> list[str]:
        return self.sp.encode(text, out_type=str)

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Decode, stopping at the first ``</s>`` and ignoring padding."""
        clean = []
        for seq in ids:
            seq = [int(i) for i in seq]
            if EOS_ID in seq:
                seq = seq[: seq.index(EOS_ID)]
            clean.append([i for i in seq if i > EOS_ID or i == UNK_ID])
        return self.sp.decode(clean)

    def same_vocabulary(self, other: Tokenizer) -> bool:
        """Whether ``other`` has the same pieces with the same ids and scores (models trained
        on the same sample are the same vocabulary, though their files name other folders)."""
        size = self.vocab_size
        return size == other.vocab_size and all(
            self.sp.id_to_piece(i) == other.sp.id_to_piece(i)
            and self.sp.get_score(i) == other.sp.get_score(i)
            for i in range(size)
        )

    def serialized(self) -> bytes:
        """The model proto, for embedding in an exported graph."""
        return self.path.read_bytes()
