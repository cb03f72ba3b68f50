"""Text normalisation as TensorFlow ops, for graphs that take raw text (the SavedModel).

:func:`normalize_text` is :func:`s2s.text.normalize.normalize` for one language, built from the
same Python definitions into code-point tables (:func:`normalization_tables`). Besides core
TensorFlow it uses tensorflow-text's ``NormalizeUTF8``, an old op that the tensorflow-text
bundled with TF Serving has too.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from s2s.text.normalize import CJK_PUNCTUATION, CONTROL, SPACES, simplified

MAX_CODE_POINT = 0x10FFFF
NFKC, KEEP, REMOVE = 0, 1, 2  # what normalize_text does with a character


@dataclass(frozen=True)
class NormalizationTables:
    """:func:`s2s.text.normalize.normalize` for one language as code-point tables, for
    :func:`normalize_text`.

    ``kinds[i]`` applies from code point ``starts[i]`` up to the next start: ``REMOVE`` (control
    characters), ``KEEP`` (not given to NFKC: Chinese full-width punctuation, and code points
    this Python's Unicode leaves unassigned, which a newer ICU might change), else ``NFKC``.
    After NFKC, ``keys[j]`` becomes ``values[j]`` (spaces to U+0020, traditional characters
    to simplified ones).
    """

    starts: np.ndarray
    kinds: np.ndarray
    keys: np.ndarray
    values: np.ndarray


@functools.cache
def normalization_tables(lang: str, script: str = "keep") -> NormalizationTables:
    """The tables of ``normalize(text, lang, script)``, built from the same Python definitions."""
    chars = [chr(cp) for cp in range(MAX_CODE_POINT + 1)]
    kept = set(CJK_PUNCTUATION) if lang == "zh" else set()
    kinds = np.array([_kind(c, kept) for c in chars], np.int32)
    starts = np.flatnonzero(np.diff(kinds, prepend=-1)).astype(np.int32)
    replace = {ord(c): " " for c in chars if SPACES.fullmatch(c)}
    if lang == "zh" and script == "simplified":  # simplified forms are never spaces
        replace.update(simplified())
    if any(len(v) != 1 for v in replace.values()):
        raise ValueError("normalize_text replaces one character by exactly one character")
    keys = np.array(sorted(replace), np.int32)
    values = np.array([ord(replace[k]) for k in keys], np.int32)
    return NormalizationTables(starts, kinds[starts], keys, values)


def _kind(char: str, kept: set[str]) -> int:
    """``REMOVE``, ``KEEP`` or ``NFKC`` (see :class:`NormalizationTables`)."""
    if CONTROL.match(char):
        return REMOVE
    if char in kept or unicodedata.category(char) in ("Cn", "Cs"):
        return KEEP
    return NFKC


def normalize_text(text: tf.Tensor, tables: NormalizationTables) -> tf.Tensor:
    """:func:`s2s.text.normalize.normalize` in TensorFlow ops: ``[N]`` strings -> ``[N]`` strings.

    Needed because the SentencePiece rules apply NFKC to one character at a time, while
    Python normalises whole strings: ``"Cafe\\u0301"`` is ``"Café"`` in Python only.
    ``normalize_utf8`` (ICU) gives this Python's NFKC for every assigned character: Unicode
    never changes the normal form of text assigned in an older version. Characters between
    kept ones are normalised run by run, as Python does around Chinese punctuation: a kept
    character is a starter that composes with nothing, so the runs never interact.
    """
    chars = tf.strings.unicode_decode(text, "UTF-8", errors="replace")  # bad bytes: U+FFFD
    kinds = chars.with_flat_values(_run_lookup(tables, chars.flat_values))
    chars = tf.ragged.boolean_mask(chars, tf.not_equal(kinds, REMOVE))
    kinds = tf.ragged.boolean_mask(kinds, tf.not_equal(kinds, REMOVE))
    text = _nfkc_between_kept(chars, tf.equal(kinds.flat_values, KEEP))
    chars = tf.strings.unicode_decode(text, "UTF-8")
    chars = chars.with_flat_values(_replace(tables, chars.flat_values))
    text = tf.strings.unicode_encode(chars, "UTF-8")
    return tf.strings.strip(tf.strings.regex_replace(text, " +", " "))


def _run_lookup(tables: NormalizationTables, code_points: tf.Tensor) -> tf.Tensor:
    """The kind of each code point (``[M]`` -> ``[M]``)."""
    run = tf.searchsorted(tables.starts, code_points, side="right") - 1
    return tf.gather(tables.kinds, run)


def _replace(tables: NormalizationTables, code_points: tf.Tensor) -> tf.Tensor:
    """``keys`` -> ``values`` for each code point, the others unchanged."""
    at = tf.minimum(tf.searchsorted(tables.keys, code_points), len(tables.keys) - 1)
    found = tf.equal(tf.gather(tables.keys, at), code_points)
    return tf.where(found, tf.gather(tables.values, at), code_points)


def _nfkc_between_kept(chars: tf.RaggedTensor, kept: tf.Tensor) -> tf.Tensor:
    """``[N]`` strings: NFKC of each run of characters between kept ones, kept ones as they are.

    Every kept character and every run becomes one segment string; NFKC runs on the segments
    at once and ``reduce_join`` puts each row back together.
    """
    rows = chars.value_rowids()

    def before(x, first):  # the previous element of each, ``first`` for the first one
        return tf.concat([tf.constant([first], x.dtype), x], 0)[:-1]

    starts = kept | before(kept, True) | tf.not_equal(rows, before(rows, -1))
    segment = tf.cumsum(tf.cast(starts, tf.int64)) - 1
    texts = tf.strings.unicode_encode(
        tf.RaggedTensor.from_value_rowids(chars.flat_values, segment), "UTF-8"
    )
    texts = tf.where(tf.boolean_mask(kept, starts), texts, tf_text.normalize_utf8(texts, "NFKC"))
    per_row = tf.RaggedTensor.from_value_rowids(
        texts, tf.boolean_mask(rows, starts), nrows=chars.nrows()
    )
    return tf.strings.reduce_join(per_row, axis=1)
