"""Clean a corpus chunk by chunk: normalise both sides, drop bad pairs and duplicates, count
every dropped line by reason with the first line it happened at.

``kept + sum(dropped) == lines_read`` always holds (:class:`CleaningReport`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from s2s.config.choices import SCRIPTS
from s2s.data.errors import CorpusError
from s2s.data.parallel import ordered_map
from s2s.text.normalize import HAN, normalize

DROP_REASONS = (
    "invalid_utf8",
    "wrong_columns",
    "empty",
    "too_long",
    "same_as_source",
    "no_chinese",
    "duplicate",
)


@dataclass
class CleaningReport:
    """What happened to every input line: ``kept + sum(dropped) == lines_read``."""

    path: str
    lines_read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)  # reason -> first offending line number

    def drop(self, reason: str, line_no: int, count: int = 1) -> None:
        self.dropped[reason] += count
        self.examples.setdefault(reason, line_no)

    def as_dict(self) -> dict:
        return {"lines_read": self.lines_read, "kept": self.kept, "dropped": dict(self.dropped)}

    def summary(self) -> str:
        rows = [f"{self.path}: {self.lines_read:,} lines read, {self.kept:,} pairs kept"]
        for reason in DROP_REASONS:
            if self.dropped.get(reason):
                rows.append(
                    f"  dropped {reason:<14} {self.dropped[reason]:>7,}"
                    f"  (first at line {self.examples[reason]})"
                )
        return "\n".join(rows)


def screen(
    frame: pd.DataFrame, src_lang: str, tgt_lang: str, max_chars: int, script: str = "keep"
) -> tuple[pd.DataFrame, list[tuple[str, int, int]]]:
    """Normalise one chunk and drop the pairs that are bad on their own (every reason but
    ``duplicate``); returns the rest and ``(reason, first line, count)`` of each drop.

    A pure function of the chunk, so that worker processes can screen chunks side by side
    (see :func:`clean_chunks`).
    """
    frame = frame.assign(
        src=frame["src"].map(lambda s: normalize(s, src_lang, script)),
        tgt=frame["tgt"].map(lambda s: normalize(s, tgt_lang, script)),
    )
    checks = [
        ("empty", lambda f: (f["src"] == "") | (f["tgt"] == "")),
        ("too_long", lambda f: (f["src"].str.len() > max_chars) | (f["tgt"].str.len() > max_chars)),
        ("same_as_source", lambda f: f["src"] == f["tgt"]),
        ("no_chinese", lambda f: _no_chinese(f, src_lang, tgt_lang)),
    ]
    drops = []
    for reason, check in checks:
        bad = check(frame)
        if bad.any():
            drops.append((reason, int(frame.loc[bad, "line"].iloc[0]), int(bad.sum())))
        frame = frame[~bad]
    return frame, drops


class Cleaner:
    """Normalise both sides and drop bad pairs, counting each by reason (see DROP_REASONS).

    Called once per chunk (:func:`screen`, then duplicates); exact duplicates are found across
    chunks through 64-bit hashes of the pairs kept so far (8 bytes a pair rather than the text;
    two distinct pairs among two million share a hash with probability about 1e-7).
    ``same_as_source``: the target copies the source; ``no_chinese``: the Chinese side has no
    Han character (an untranslated or misplaced line). ``script="simplified"`` converts
    traditional Chinese characters.
    """

    def __init__(
        self,
        report: CleaningReport,
        src_lang: str,
        tgt_lang: str,
        max_chars: int,
        script: str = "keep",
    ):
        if script not in SCRIPTS:
            raise CorpusError(f"data.chinese_script must be one of {SCRIPTS}, not {script!r}")
        self.report = report
        self.screening = (src_lang, tgt_lang, max_chars, script)  # screen()'s arguments
        self._seen = HashSet()  # hashes of the pairs kept so far

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.deduplicate(*screen(frame, *self.screening))

    def deduplicate(self, frame: pd.DataFrame, drops: list[tuple[str, int, int]]) -> pd.DataFrame:
        """Count a screened chunk's drops, then drop (and count) its duplicates."""
        for reason, line, count in drops:
            self.report.drop(reason, line, count)
        bad = self._duplicates(frame)
        if bad.any():
            self.report.drop("duplicate", int(frame.loc[bad, "line"].iloc[0]), int(bad.sum()))
        frame = frame[~bad]
        self._remember(frame)
        self.report.kept += len(frame)
        return frame.reset_index(drop=True)

    @staticmethod
    def _hashes(frame: pd.DataFrame) -> np.ndarray:
        return pd.util.hash_pandas_object(frame[["src", "tgt"]], index=False).to_numpy()

    def _duplicates(self, frame: pd.DataFrame) -> pd.Series:
        earlier = self._seen.contains(self._hashes(frame))
        return pd.Series(earlier, index=frame.index) | frame.duplicated(["src", "tgt"])

    def _remember(self, kept: pd.DataFrame) -> None:
        self._seen.add(self._hashes(kept))  # new and distinct: nothing to check again


class HashSet:
    """A growing set of 64-bit hashes held as a few sorted arrays (a log-structured merge).

    Each chunk's hashes become a sorted run; a run is merged with the one before it while that
    one is not larger, so there are at most ~log2(n / chunk) runs and each hash is merged
    ~log2(n / chunk) times: keeping n hashes costs O(n log n) in all, not the O(n^2 / chunk) of
    re-sorting every hash seen so far for each chunk. 8 bytes a hash; lookups are binary
    searches in each run (``np.isin`` was 10x slower on 2M pairs).
    """

    def __init__(self):
        self.runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self.runs)

    def add(self, values: np.ndarray) -> None:
        """Add hashes not in the set yet (and distinct among themselves)."""
        run = np.sort(np.asarray(values, np.uint64))
        while self.runs and len(self.runs[-1]) <= len(run):
            # Two sorted runs: the stable sort (timsort) merges them in linear time.
            run = np.sort(np.concatenate([self.runs.pop(), run]), kind="stable")
        self.runs.append(run)

    def contains(self, values: np.ndarray) -> np.ndarray:
        """``values[i] in self`` for each i: ``bool [len(values)]``."""
        found = np.zeros(len(values), bool)
        for run in self.runs:
            found |= is_member(run, values)
        return found


def clean(
    frame: pd.DataFrame,
    report: CleaningReport,
    src_lang: str,
    tgt_lang: str,
    max_chars: int,
    script: str = "keep",
) -> pd.DataFrame:
    """Clean one whole frame (see :class:`Cleaner`); ``report.kept`` is set to what is kept."""
    report.kept = 0
    return Cleaner(report, src_lang, tgt_lang, max_chars, script)(frame)


def clean_chunks(chunks, cleaner: Cleaner, workers: int = 1) -> Iterator[pd.DataFrame]:
    """``cleaner`` over ``chunks``, in order. With ``workers > 1``, that many processes screen
    chunks (:func:`screen`: normalisation, the per-pair checks) while this one reads,
    deduplicates and writes (see :mod:`s2s.data.parallel`)."""
    for screened in ordered_map(screen, chunks, workers, *cleaner.screening):
        yield cleaner.deduplicate(*screened)


def _no_chinese(frame: pd.DataFrame, src_lang: str, tgt_lang: str) -> pd.Series:
    bad = pd.Series(False, index=frame.index)
    for side, lang in (("src", src_lang), ("tgt", tgt_lang)):
        if lang.startswith("zh"):
            bad |= ~frame[side].str.contains(HAN, regex=True)
    return bad


def hash_texts(texts) -> np.ndarray:
    """64-bit hashes of strings (pandas' keyed SipHash: the same in every run and process)."""
    values = texts.to_numpy(dtype=object) if isinstance(texts, pd.Series) else list(texts)
    return pd.util.hash_array(np.asarray(values, dtype=object))


def is_member(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values[i] in sorted_values`` for each i, by binary search (np.isin was 10x slower).
    The queries are searched in sorted order: each search starts where the last one ended,
    which is 3x faster on large arrays (fewer cache misses)."""
    found = np.zeros(len(values), bool)
    if not len(sorted_values) or not len(values):
        return found
    order = np.argsort(values)
    queries = np.asarray(values)[order]
    at = np.minimum(np.searchsorted(sorted_values, queries), len(sorted_values) - 1)
    found[order] = sorted_values[at] == queries
    return found
