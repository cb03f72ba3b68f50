"""Read a parallel corpus, normalise and clean it (counting every dropped line), and split it.

The split groups pairs by source sentence, so a source in dev or test never occurs in train,
and dev/test keep every reference of a source for multi-reference scoring.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from s2s.choices import SCRIPTS

# Full-width punctuation that Chinese text uses and NFKC would turn into ASCII.
CJK_PUNCTUATION = "，！？：；（）"
_CJK_PUNCT_RUN = re.compile(f"([{CJK_PUNCTUATION}]+)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACES = re.compile(r"\s+")

DROP_REASONS = (
    "invalid_utf8",
    "wrong_columns",
    "empty",
    "too_long",
    "same_as_source",
    "no_chinese",
    "duplicate",
)
_HAN = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"


class CorpusError(ValueError):
    """A corpus file that cannot be read at all."""


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


def normalize(text: str, lang: str, script: str = "keep") -> str:
    """NFKC, control characters dropped, spaces collapsed; Chinese keeps full-width punctuation.

    ``script="simplified"`` also converts traditional Chinese characters to simplified ones
    (Chinese text only), character by character with OpenCC's table (see :func:`simplified`).
    """
    text = _CONTROL.sub("", text)
    if lang == "zh":
        parts = _CJK_PUNCT_RUN.split(text)
        text = "".join(
            p if i % 2 else unicodedata.normalize("NFKC", p) for i, p in enumerate(parts)
        )
        if script == "simplified":
            text = text.translate(simplified())
    else:
        text = unicodedata.normalize("NFKC", text)
    return _SPACES.sub(" ", text).strip()


_HAN_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))


@functools.cache
def simplified() -> dict[int, str]:
    """Traditional -> simplified Chinese, one character at a time (a ``str.translate`` table).

    Built from OpenCC's ``t2s`` conversion (the official OpenCC package, maintained, with
    wheels for this Python). Character by character rather than OpenCC's phrase-level
    conversion, so that the same table can be written into the SentencePiece models and the
    exported model normalises input exactly as Python does; phrases whose simplified form
    depends on context (a few hundred, e.g. 乾 in 乾隆) keep the common reading.
    """
    import opencc

    chars = [chr(cp) for low, high in _HAN_RANGES for cp in range(low, high + 1)]
    converted = opencc.OpenCC("t2s").convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):
        raise RuntimeError("OpenCC changed the number of lines of the character list")
    return {ord(c): s for c, s in zip(chars, converted, strict=True) if s != c}


def normalization_rules(lang: str, script: str = "keep") -> str:
    """:func:`normalize` as SentencePiece rules (TSV: code points -> code points, in hex).

    Trained into each SentencePiece model, so a tokenizer normalises raw text exactly like the
    Python pipeline does, also where no Python runs (the exported SavedModel). NUL cannot be
    expressed as a rule; every other character that :func:`normalize` changes is listed.
    """
    keep = set(CJK_PUNCTUATION) if lang == "zh" else set()
    to_simplified = simplified() if lang == "zh" and script == "simplified" else {}
    rows = []
    for cp in range(1, 0x110000):
        char = chr(cp)
        if 0xD800 <= cp <= 0xDFFF or char in keep:
            continue
        if _CONTROL.match(char):
            rows.append(f"{cp:X}\t")  # removed
            continue
        target = unicodedata.normalize("NFKC", char).translate(to_simplified)
        target = " " if _SPACES.fullmatch(target) else target
        if target != char:
            rows.append(f"{cp:X}\t" + " ".join(f"{ord(c):X}" for c in target))
    return "\n".join(rows) + "\n"


CHUNK_LINES = 100_000  # lines read, normalised and cleaned at a time (bounds the memory)


def read_tsv(
    path: Path, columns: dict[str, int], src_lang: str, tgt_lang: str, limit: int | None = None
) -> tuple[pd.DataFrame, CleaningReport]:
    """Read ``path`` (one pair a line, tab-separated) into a frame of ``line, src, tgt``.

    Lines that are not valid UTF-8 or lack the needed columns are counted, not raised.
    """
    report = CleaningReport(path=str(path))
    return _concat(iter_tsv(path, columns, src_lang, tgt_lang, report, limit)), report


def iter_tsv(
    path: Path,
    columns: dict,
    src_lang: str,
    tgt_lang: str,
    report: CleaningReport,
    limit: int | None = None,
    chunk_lines: int = CHUNK_LINES,
) -> Iterator[pd.DataFrame]:
    """:func:`read_tsv` in frames of at most ``chunk_lines`` lines, counting into ``report``."""
    try:
        fh = open(path, "rb")
    except OSError as e:
        raise CorpusError(f"{path}: cannot open: {e.strerror}") from e
    with fh:
        header = None
        if any(isinstance(columns.get(lang), str) for lang in (src_lang, tgt_lang)):
            header = fh.readline().decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r\n")
            columns = _column_indexes(path, header.split("\t"), columns, (src_lang, tgt_lang))
        for lang in (src_lang, tgt_lang):
            if lang not in columns:
                raise CorpusError(f"{path}: no column for {lang!r} (columns: {columns})")
        src_col, tgt_col = columns[src_lang], columns[tgt_lang]
        need = max(src_col, tgt_col) + 1
        records = []
        for line_no, raw in enumerate(fh, start=2 if header is not None else 1):
            if limit is not None and report.lines_read >= limit:
                break
            report.lines_read += 1
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                report.drop("invalid_utf8", line_no)
                continue
            fields = line.split("\t")
            if len(fields) < need:
                report.drop("wrong_columns", line_no)
                continue
            records.append((line_no, fields[src_col], fields[tgt_col]))
            if len(records) == chunk_lines:
                yield _frame(records)
                records = []
        if records:
            yield _frame(records)
    if report.lines_read == 0:
        raise CorpusError(f"{path}: the file is empty")


def _frame(records: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame.from_records(records, columns=["line", "src", "tgt"])


def _concat(chunks) -> pd.DataFrame:
    frames = list(chunks)
    return pd.concat(frames, ignore_index=True) if frames else _frame([])


def _column_indexes(path: Path, names: list[str], columns: dict, langs) -> dict[str, int]:
    """``{lang: header name or index}`` -> ``{lang: index}``, naming what is missing."""
    out = {}
    for lang in langs:
        wanted = columns.get(lang)
        if isinstance(wanted, str):
            if wanted not in names:
                raise CorpusError(f"{path}: no column named {wanted!r} in the header {names}")
            wanted = names.index(wanted)
        out[lang] = wanted
    return out


class Cleaner:
    """Normalise both sides and drop bad pairs, counting each by reason (see DROP_REASONS).

    Called once per chunk; exact duplicates are found across chunks through 64-bit hashes of
    the pairs kept so far (8 bytes a pair rather than the text; two distinct pairs among two
    million share a hash with probability about 1e-7). ``same_as_source``: the target
    copies the source; ``no_chinese``: the Chinese side has no Han character (an untranslated or
    misplaced line). ``script="simplified"`` converts traditional Chinese characters.
    """

    def __init__(
        self,
        report: CleaningReport,
        src_lang: str,
        tgt_lang: str,
        max_chars: int,
        script: str = "keep",
    ):
        self.report, self.langs, self.max_chars = report, (src_lang, tgt_lang), max_chars
        if script not in SCRIPTS:
            raise CorpusError(f"data.chinese_script must be one of {SCRIPTS}, not {script!r}")
        self.script = script
        self._seen = np.empty(0, np.uint64)  # sorted hashes of the pairs kept so far

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        src_lang, tgt_lang = self.langs
        frame = frame.assign(
            src=frame["src"].map(lambda s: normalize(s, src_lang, self.script)),
            tgt=frame["tgt"].map(lambda s: normalize(s, tgt_lang, self.script)),
        )
        max_chars = self.max_chars
        checks = [
            ("empty", lambda f: (f["src"] == "") | (f["tgt"] == "")),
            (
                "too_long",
                lambda f: (f["src"].str.len() > max_chars) | (f["tgt"].str.len() > max_chars),
            ),
            ("same_as_source", lambda f: f["src"] == f["tgt"]),
            ("no_chinese", lambda f: _no_chinese(f, src_lang, tgt_lang)),
            ("duplicate", self._duplicates),
        ]
        for reason, check in checks:
            bad = check(frame)
            if bad.any():
                self.report.drop(reason, int(frame.loc[bad, "line"].iloc[0]), int(bad.sum()))
            frame = frame[~bad]
        self._remember(frame)
        self.report.kept += len(frame)
        return frame.reset_index(drop=True)

    @staticmethod
    def _hashes(frame: pd.DataFrame) -> np.ndarray:
        return pd.util.hash_pandas_object(frame[["src", "tgt"]], index=False).to_numpy()

    def _duplicates(self, frame: pd.DataFrame) -> pd.Series:
        hashes = self._hashes(frame)
        earlier = np.zeros(len(hashes), bool)
        if len(self._seen):  # sorted lookups (np.isin was 10x slower on 2M pairs)
            at = np.minimum(np.searchsorted(self._seen, hashes), len(self._seen) - 1)
            earlier = self._seen[at] == hashes
        return pd.Series(earlier, index=frame.index) | frame.duplicated(["src", "tgt"])

    def _remember(self, kept: pd.DataFrame) -> None:
        # The kept pairs are new and distinct, so their hashes only need merging in.
        self._seen = np.sort(np.concatenate([self._seen, self._hashes(kept)]))


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


def _no_chinese(frame: pd.DataFrame, src_lang: str, tgt_lang: str) -> pd.Series:
    bad = pd.Series(False, index=frame.index)
    for side, lang in (("src", src_lang), ("tgt", tgt_lang)):
        if lang.startswith("zh"):
            bad |= ~frame[side].str.contains(_HAN, regex=True)
    return bad


@dataclass
class Splits:
    train: pd.DataFrame  # one row per pair: line, src, tgt
    dev: pd.DataFrame  # all pairs of the dev sources
    test: pd.DataFrame

    def sizes(self) -> str:
        return ", ".join(
            f"{name} {len(df):,} pairs / {df['src'].nunique():,} sources"
            for name, df in (("train", self.train), ("dev", self.dev), ("test", self.test))
        )


def split(frame: pd.DataFrame, dev_sources: int, test_sources: int, seed: int) -> Splits:
    """Deterministic split by distinct source sentence (a source's pairs stay together)."""
    sources = frame["src"].drop_duplicates().to_numpy()
    if dev_sources + test_sources >= len(sources):
        raise CorpusError(
            f"only {len(sources)} distinct sources; cannot hold out {dev_sources} + {test_sources}"
        )
    order = np.random.default_rng(seed).permutation(len(sources))
    test_set = set(sources[order[:test_sources]])
    dev_set = set(sources[order[test_sources : test_sources + dev_sources]])
    in_test = frame["src"].isin(test_set)
    in_dev = frame["src"].isin(dev_set)
    return Splits(
        train=frame[~in_test & ~in_dev].reset_index(drop=True),
        dev=frame[in_dev].reset_index(drop=True),
        test=frame[in_test].reset_index(drop=True),
    )


def references(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Distinct sources (in first-seen order) and, for each, all its references."""
    grouped = frame.groupby("src", sort=False)["tgt"].agg(list)
    return grouped.index.tolist(), grouped.tolist()


def save_splits(splits: Splits, folder: Path) -> None:
    """Write each split as ``line<TAB>src<TAB>tgt`` (text has no tabs after normalisation)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train", "dev", "test"):
        frame = getattr(splits, name)
        with open(folder / f"{name}.tsv", "w", encoding="utf-8") as f:
            f.write("line\tsrc\ttgt\n")
            for line, src, tgt in frame[["line", "src", "tgt"]].itertuples(index=False):
                f.write(f"{line}\t{src}\t{tgt}\n")


def load_splits(folder: Path) -> Splits:
    def read(name: str) -> pd.DataFrame:
        return pd.read_csv(
            folder / f"{name}.tsv",
            sep="\t",
            dtype={"src": str, "tgt": str},
            keep_default_na=False,
            quoting=3,
        )

    return Splits(train=read("train"), dev=read("dev"), test=read("test"))


def open_corpus(
    config: dict, path: Path | None = None, chunk_lines: int = CHUNK_LINES
) -> tuple[Iterator[pd.DataFrame], CleaningReport]:
    """The configured corpus as raw frames of at most ``chunk_lines`` lines, and its report.

    Two aligned files, a TSV path, or a manifest corpus; ``path`` (``--corpus`` on the command
    line) replaces the configured TSV or corpus. The report fills in as the frames are read.
    """
    from s2s.corpora import corpus_entry, locate

    data = config["data"]
    src, tgt, limit = data["src_lang"], data["tgt_lang"], data.get("limit")
    if path is None and data.get("src_file"):
        if not data.get("tgt_file"):
            raise CorpusError("data.src_file is set but data.tgt_file is not")
        src_path, tgt_path = Path(data["src_file"]), Path(data["tgt_file"])
        report = CleaningReport(path=f"{src_path} + {tgt_path}")
        return iter_parallel(src_path, tgt_path, report, limit, chunk_lines), report
    columns = data.get("columns") or (
        corpus_entry(data["corpus"])["columns"] if data.get("corpus") else None
    )
    if not columns:
        raise CorpusError("a TSV corpus needs data.columns, e.g. {en: 0, zh: 1}")
    path = path or (Path(data["path"]) if data.get("path") else locate(data["corpus"]))
    report = CleaningReport(path=str(path))
    return iter_tsv(path, columns, src, tgt, report, limit, chunk_lines), report


def read_corpus(config: dict, path: Path | None = None) -> tuple[pd.DataFrame, CleaningReport]:
    """The whole configured corpus, raw, in one frame (see :func:`open_corpus`)."""
    chunks, report = open_corpus(config, path)
    return _concat(chunks), report


def read_parallel(
    src_path: Path, tgt_path: Path, limit: int | None = None
) -> tuple[pd.DataFrame, CleaningReport]:
    """Two line-aligned plain-text files (line ``i`` of one translates line ``i`` of the other).

    Files whose line counts differ are refused: the pairs could not be trusted.
    """
    report = CleaningReport(path=f"{src_path} + {tgt_path}")
    return _concat(iter_parallel(src_path, tgt_path, report, limit)), report


def iter_parallel(
    src_path: Path,
    tgt_path: Path,
    report: CleaningReport,
    limit: int | None = None,
    chunk_lines: int = CHUNK_LINES,
) -> Iterator[pd.DataFrame]:
    """:func:`read_parallel` in frames of at most ``chunk_lines`` lines."""
    counts = []
    for path in (src_path, tgt_path):
        try:
            with open(path, "rb") as f:
                counts.append(sum(1 for _ in f))
        except OSError as e:
            raise CorpusError(f"{path}: cannot open: {e.strerror}") from e
    if counts[0] != counts[1]:
        raise CorpusError(
            f"{src_path} has {counts[0]:,} lines but {tgt_path} has {counts[1]:,}; "
            "parallel files must be line-aligned"
        )
    if counts[0] == 0:
        raise CorpusError(f"{src_path}: the file is empty")
    records = []
    with open(src_path, "rb") as fs, open(tgt_path, "rb") as ft:
        for line_no, (raw_src, raw_tgt) in enumerate(zip(fs, ft, strict=True), start=1):
            if limit is not None and line_no > limit:
                break
            report.lines_read += 1
            try:
                pair = (raw_src.decode("utf-8"), raw_tgt.decode("utf-8"))
            except UnicodeDecodeError:
                report.drop("invalid_utf8", line_no)
                continue
            records.append((line_no, *(side.rstrip("\r\n") for side in pair)))
            if len(records) == chunk_lines:
                yield _frame(records)
                records = []
    if records:
        yield _frame(records)


def read_and_clean(
    config: dict, path: Path | None = None, chunk_lines: int = CHUNK_LINES
) -> tuple[pd.DataFrame, CleaningReport]:
    """Read and clean the corpus a chunk at a time; only the kept pairs are held."""
    data = config["data"]
    chunks, report = open_corpus(config, path, chunk_lines)
    cleaner = Cleaner(
        report, data["src_lang"], data["tgt_lang"], data["max_chars"], data["chinese_script"]
    )
    return _concat(cleaner(chunk) for chunk in chunks), report


def prepare(config: dict, path: Path | None = None) -> tuple[Splits, CleaningReport]:
    """The whole data stage: read, clean, split."""
    data = config["data"]
    frame, report = read_and_clean(config, path)
    return split(frame, data["dev_sources"], data["test_sources"], data["seed"]), report
