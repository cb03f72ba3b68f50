"""Read a parallel corpus, normalise and clean it (counting every dropped line), and split it.

The split groups pairs by source sentence, so a source in dev or test never occurs in train,
and dev/test keep every reference of a source for multi-reference scoring.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import shutil
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from s2s.choices import SCRIPTS, SPEED_ONLY
from s2s.parallel import ordered_map, worker_count

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
        self._seen = np.empty(0, np.uint64)  # sorted hashes of the pairs kept so far

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


def clean_chunks(chunks, cleaner: Cleaner, workers: int = 1) -> Iterator[pd.DataFrame]:
    """``cleaner`` over ``chunks``, in order. With ``workers > 1``, that many processes screen
    chunks (:func:`screen`: normalisation, the per-pair checks) while this one reads,
    deduplicates and writes (see :mod:`s2s.parallel`)."""
    for screened in ordered_map(screen, chunks, workers, *cleaner.screening):
        yield cleaner.deduplicate(*screened)


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


def corpus_files(config: dict, path: Path | None = None) -> tuple[str, list[Path]]:
    """What :func:`open_corpus` reads: ``("parallel", [src, tgt])`` or ``("tsv", [file])``.

    Relative file names are looked for as given, then under ``$S2S_CORPUS_DIR`` and the cache
    (:func:`s2s.corpora.resolve_file`); a manifest corpus is found by :func:`s2s.corpora.locate`.
    """
    from s2s.corpora import corpus_entry, locate, locate_parallel, resolve_file

    data = config["data"]
    if path is not None:
        return "tsv", [Path(path)]
    if data.get("src_file"):
        if not data.get("tgt_file"):
            raise CorpusError("data.src_file is set but data.tgt_file is not")
        return "parallel", [resolve_file(data["src_file"]), resolve_file(data["tgt_file"])]
    if data.get("path"):
        return "tsv", [resolve_file(data["path"])]
    if not data.get("corpus"):
        raise CorpusError("no corpus: set data.corpus, data.path or data.src_file/tgt_file")
    if corpus_entry(data["corpus"]).get("format") == "parallel":
        return "parallel", list(locate_parallel(data["corpus"], data["src_lang"], data["tgt_lang"]))
    return "tsv", [locate(data["corpus"])]


def open_corpus(
    config: dict, path: Path | None = None, chunk_lines: int = CHUNK_LINES
) -> tuple[Iterator[pd.DataFrame], CleaningReport]:
    """The configured corpus as raw frames of at most ``chunk_lines`` lines, and its report.

    Two aligned files, a TSV path, or a manifest corpus (a TSV file, or one file per language
    for ``format: parallel``); ``path`` (``--corpus`` on the command line) replaces the
    configured corpus with a TSV file. The report fills in as the frames are read.
    """
    from s2s.corpora import corpus_entry

    data = config["data"]
    src, tgt, limit = data["src_lang"], data["tgt_lang"], data.get("limit")
    kind, files = corpus_files(config, path)
    if kind == "parallel":
        report = CleaningReport(path=f"{files[0]} + {files[1]}")
        return iter_parallel(files[0], files[1], report, limit, chunk_lines), report
    columns = data.get("columns") or (
        corpus_entry(data["corpus"]).get("columns") if data.get("corpus") else None
    )
    if not columns:
        raise CorpusError("a TSV corpus needs data.columns, e.g. {en: 0, zh: 1}")
    report = CleaningReport(path=str(files[0]))
    return iter_tsv(files[0], columns, src, tgt, report, limit, chunk_lines), report


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
    config: dict, path: Path | None = None, chunk_lines: int = CHUNK_LINES, workers: int = 1
) -> tuple[pd.DataFrame, CleaningReport]:
    """Read and clean the corpus a chunk at a time (``workers``: see :func:`clean_chunks`);
    only the kept pairs are held."""
    data = config["data"]
    chunks, report = open_corpus(config, path, chunk_lines)
    cleaner = Cleaner(
        report, data["src_lang"], data["tgt_lang"], data["max_chars"], data["chinese_script"]
    )
    return _concat(clean_chunks(chunks, cleaner, workers)), report


def prepare(config: dict, path: Path | None = None) -> tuple[Splits, CleaningReport]:
    """The whole data stage: read, clean, split."""
    data = config["data"]
    frame, report = read_and_clean(config, path)
    return split(frame, data["dev_sources"], data["test_sources"], data["seed"]), report


# -- the run's data folder, in memory bounded independently of the corpus size ------------------
#
# folder/train.tsv           line, src, tgt: the training pairs (written a chunk at a time)
# folder/<set file>.tsv      id, line, src, tgt: one row per reference; rows of a sentence share
#                            its id (0, 1, ... in set order); dev.tsv, test.tsv, test-<name>.tsv
# folder/summary.json        what was prepared (train pairs, each set's file, sizes, lowercase
#                            flag and overlap, cleaning); written last, so its presence means done
# folder/cleaning.json       the cleaning report (CleaningReport.as_dict)
# folder/overlap.json        {set: {"sources": n, "in_train": k}}: sources also in training

SUMMARY = "summary.json"
TRAIN_HEADER = "line\tsrc\ttgt\n"
SET_HEADER = "id\tline\tsrc\ttgt\n"
CARVED = "held out from the corpus"
_SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SPEC_KEYS = ("src", "refs", "lowercase")


@dataclass
class EvalSet:
    """A dev or test set: each source with all its references (a list per sentence)."""

    name: str
    sources: list[str]
    references: list[list[str]]
    lowercase: bool = False  # score case-insensitively (sacreBLEU ``lowercase``)

    def __len__(self) -> int:
        return len(self.sources)


@dataclass
class EvalSpec:
    """An own evaluation set in the config: a source file and line-aligned reference files."""

    name: str
    key: str  # the config key it came from, for messages: data.dev, data.test.<name>
    src: Path
    refs: list[Path]
    lowercase: bool = False


def set_file(name: str) -> str:
    """The file of set ``name`` in the data folder: dev.tsv, test.tsv, test-<name>.tsv."""
    return f"{name}.tsv" if name in ("dev", "test") else f"test-{name}.tsv"


def primary_test_set(names) -> str | None:
    """ "The" test set among a folder's set names: the one named ``test``, else the first."""
    names = [n for n in names if n != "dev"]
    return "test" if "test" in names else (names[0] if names else None)


def eval_specs(config: dict) -> dict[str, EvalSpec]:
    """The own dev/test sets the config names (``data.dev``, ``data.test``), checked.

    ``data.test`` maps names to specs; a single spec (with a ``src`` key) is the set ``test``.
    File names are resolved as corpus files are (:func:`s2s.corpora.resolve_file`).
    """
    data = config["data"]
    specs = {}
    if data.get("dev") is not None:
        specs["dev"] = _spec("dev", data["dev"], "data.dev")
    tests = data.get("test")
    if tests is None:
        return specs
    if isinstance(tests, dict) and isinstance(tests.get("src"), str):
        tests = {"test": tests}
    if not isinstance(tests, dict) or not tests:
        raise CorpusError(
            f"data.test must map set names to {{src: file, refs: [file, ...]}}, not {tests!r}"
        )
    for name, spec in tests.items():
        if not isinstance(name, str) or not _SET_NAME.fullmatch(name) or name == "dev":
            raise CorpusError(
                f"data.test: {name!r} cannot name a test set (letters, digits, . _ -; not dev)"
            )
        specs[name] = _spec(name, spec, f"data.test.{name}")
    return specs


def _spec(name: str, spec, key: str) -> EvalSpec:
    from s2s.corpora import resolve_file

    if not isinstance(spec, dict):
        raise CorpusError(f"{key} must be {{src: file, refs: [file, ...]}}, not {spec!r}")
    unknown = sorted(set(spec) - set(_SPEC_KEYS))
    if unknown:
        raise CorpusError(f"{key}: unknown key {unknown[0]!r} (known: {', '.join(_SPEC_KEYS)})")
    refs = [spec["refs"]] if isinstance(spec.get("refs"), str) else spec.get("refs")
    if (
        not isinstance(spec.get("src"), str)
        or not refs
        or not all(isinstance(r, str) for r in refs)
    ):
        raise CorpusError(f"{key} needs src (a file) and refs (one file or a list of files)")
    lowercase = spec.get("lowercase", False)
    if not isinstance(lowercase, bool):
        raise CorpusError(f"{key}.lowercase must be true or false, not {lowercase!r}")
    return EvalSpec(
        name, key, resolve_file(spec["src"]), [resolve_file(r) for r in refs], lowercase
    )


def read_eval_set(spec: EvalSpec, src_lang: str, tgt_lang: str, script: str = "keep") -> EvalSet:
    """Read and normalise an own set (as the corpus is); nothing is dropped from it.

    Every reference file must have as many lines as the source file, and every line must be
    UTF-8: the error names the file and the line.
    """
    sources = [normalize(s, src_lang, script) for s in _read_lines(spec.src)]
    if not sources:
        raise CorpusError(f"{spec.key}: {spec.src} is empty")
    columns = []
    for path in spec.refs:
        refs = _read_lines(path)
        if len(refs) != len(sources):
            raise CorpusError(
                f"{spec.key}: {path} has {len(refs):,} lines but {spec.src} has "
                f"{len(sources):,}; references must be line-aligned with the source"
            )
        columns.append([normalize(r, tgt_lang, script) for r in refs])
    references = [list(refs) for refs in zip(*columns, strict=True)]
    return EvalSet(spec.name, sources, references, spec.lowercase)


def _read_lines(path: Path) -> list[str]:
    """A small text file's lines (split on ``\\n`` only, as the corpus reader does)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise CorpusError(f"{path}: cannot open: {e.strerror}") from e
    lines = raw.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    out = []
    for line_no, line in enumerate(lines, start=1):
        try:
            out.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as e:
            raise CorpusError(
                f"{path}, line {line_no}: not valid UTF-8 ({e.reason} at byte {e.start})"
            ) from None
    return out


def prepare_run_data(
    config: dict,
    folder: Path,
    corpus: Path | None = None,
    log=print,
    *,
    chunk_lines: int = CHUNK_LINES,
) -> dict:
    """The whole data stage into ``folder``, in memory bounded independently of corpus size.

    The corpus is streamed through :func:`open_corpus` and :class:`Cleaner` a chunk at a time
    and the kept pairs go straight to ``train.tsv``; what is held is 8 bytes a pair (the
    cleaner's pair hashes, and the source hashes used for the split and the overlap counts).
    Own dev/test sets (``data.dev``, ``data.test``) are read from line-aligned files; a set not
    given is held out from the corpus (``data.dev_sources``/``test_sources`` distinct sources,
    chosen by ``data.seed``, each with all its references; 0: no such set), so when both are
    given the whole corpus is training data. Overlap: how many sources of each set also occur
    in training, after normalisation. Files are written in ``folder/.preparing`` and moved in
    at the end, ``summary.json`` last: a killed run is redone, and a finished one reused.
    Returns the summary (also in ``summary.json``).
    """
    folder = Path(folder)
    saved = _saved_summary(folder)
    if saved is not None:
        _warn_if_changed(saved, config, corpus, log)
        log(f"data: reusing {folder} ({saved['train']['pairs']:,} training pairs)")
        return saved
    data = config["data"]
    specs = eval_specs(config)
    own = {  # small, and read first: a bad dev file fails before a long cleaning pass
        name: read_eval_set(spec, data["src_lang"], data["tgt_lang"], data["chinese_script"])
        for name, spec in specs.items()
    }
    own_tests = [name for name in own if name != "dev"]
    carve = {"test": 0 if own_tests else data["test_sources"]}
    carve["dev"] = 0 if "dev" in own else data["dev_sources"]
    carve = {name: int(n) for name, n in carve.items() if n}
    work = folder / ".preparing"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (folder / SUMMARY).unlink(missing_ok=True)
    try:
        return _prepare(config, folder, work, corpus, own, specs, carve, log, chunk_lines)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)  # a copy of the corpus may be in there
        raise


def _prepare(
    config: dict,
    folder: Path,
    work: Path,
    corpus: Path | None,
    own: dict[str, EvalSet],
    specs: dict[str, EvalSpec],
    carve: dict[str, int],
    log,
    chunk_lines: int,
) -> dict:
    """:func:`prepare_run_data` once the own sets are read: clean, carve, write, commit."""
    data = config["data"]
    own_tests = [name for name in own if name != "dev"]
    report, cleaned, hashes = _clean_to_file(config, corpus, work, bool(carve), chunk_lines)
    log(report.summary())
    carved, lines = {}, {}
    if carve:
        held = _pick_held_out(hashes, carve, data["seed"])
        carved, lines, hashes = _route(cleaned, hashes, held, work / "train.tsv", chunk_lines)
        cleaned.unlink()
    both = {**carved, **own}
    sets = {name: both[name] for name in ["dev", *(own_tests or ["test"])] if name in both}
    summary = _summarize(config, corpus, report, hashes, sets)
    for name, eval_set in sets.items():
        info = summary["sets"][name]
        info["from"] = _origin(specs[name]) if name in specs else CARVED
        _write_set(work / info["file"], eval_set, lines.get(name))
        log(_describe(eval_set, info))
    log(f"train: {summary['train']['pairs']:,} pairs, {summary['train']['sources']:,} sources")
    _commit(work, folder, summary)
    return summary


def _clean_to_file(
    config: dict, corpus: Path | None, work: Path, carving: bool, chunk_lines: int
) -> tuple[CleaningReport, Path, np.ndarray]:
    """Pass 1: clean the corpus chunk by chunk into a file; the 64-bit hash of each kept
    pair's source, in file order. The file is ``train.tsv`` unless sets are to be carved."""
    data = config["data"]
    chunks, report = open_corpus(config, corpus, chunk_lines)
    cleaner = Cleaner(
        report, data["src_lang"], data["tgt_lang"], data["max_chars"], data["chinese_script"]
    )
    out = work / ("cleaned.tsv" if carving else "train.tsv")
    total = _count_lines(corpus_files(config, corpus)[1][0])
    total = min(total, data["limit"]) if data.get("limit") else total
    hashes = []
    workers = worker_count(data["workers"], total, chunk_lines)
    with open(out, "w", encoding="utf-8", newline="\n") as f, _progress("cleaning", total) as bar:
        f.write(TRAIN_HEADER)
        for kept in clean_chunks(chunks, cleaner, workers):
            f.write(_tsv_rows(kept))
            hashes.append(hash_texts(kept["src"]))
            bar.update(report.lines_read - bar.n)
        bar.total = bar.n
    return report, out, np.concatenate(hashes) if hashes else np.empty(0, np.uint64)


def _route(
    cleaned: Path, hashes: np.ndarray, held: dict[str, np.ndarray], train: Path, chunk_lines: int
) -> tuple[dict[str, EvalSet], dict[str, list[list[int]]], np.ndarray]:
    """Pass 2: copy the cleaned pairs to ``train`` except those of held-out sources, which
    form the sets (sources in first-seen order, each with all its references). Returns the
    sets, the corpus line of each of their references, and the source hashes of train."""
    rows: dict[str, dict[str, list[tuple[int, str]]]] = {name: {} for name in held}
    in_train = np.ones(len(hashes), bool)
    with (
        open(cleaned, encoding="utf-8", newline="\n") as f,
        open(train, "w", encoding="utf-8", newline="\n") as out,
        _progress("splitting", len(hashes)) as bar,
    ):
        out.write(next(f))  # the header
        start = 0
        while chunk := list(itertools.islice(f, chunk_lines)):
            keep = in_train[start : start + len(chunk)]  # a view: marks land in in_train
            for name, sources in held.items():
                for i in np.flatnonzero(is_member(sources, hashes[start : start + len(chunk)])):
                    line, src, tgt = chunk[i].rstrip("\n").split("\t")
                    rows[name].setdefault(src, []).append((int(line), tgt))
                    keep[i] = False
            out.write("".join(itertools.compress(chunk, keep)))
            start += len(chunk)
            bar.update(len(chunk))
    sets, lines = {}, {}
    for name, groups in rows.items():
        refs = [[tgt for _, tgt in pairs] for pairs in groups.values()]
        sets[name] = EvalSet(name, list(groups), refs)
        lines[name] = [[line for line, _ in pairs] for pairs in groups.values()]
    return sets, lines, hashes[in_train]


def _pick_held_out(hashes: np.ndarray, carve: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """Seeded choice of distinct sources (as sorted hashes) for each set to carve: test first,
    then dev, as :func:`split` does."""
    distinct = np.unique(hashes)
    wanted = sum(carve.values())
    if wanted >= len(distinct):
        sizes = " + ".join(str(n) for n in carve.values())
        raise CorpusError(f"only {len(distinct)} distinct sources; cannot hold out {sizes}")
    chosen = distinct[np.random.default_rng(seed).choice(len(distinct), wanted, replace=False)]
    held, start = {}, 0
    for name, n in carve.items():
        held[name] = np.sort(chosen[start : start + n])
        start += n
    return held


def _summarize(
    config: dict,
    corpus: Path | None,
    report: CleaningReport,
    train_hashes: np.ndarray,
    sets: dict[str, EvalSet],
) -> dict:
    """The summary, overlap included: a set's source is in train when its hash is."""
    train_sources = np.unique(train_hashes)
    pairs = len(train_hashes)
    return {
        "train": {"file": "train.tsv", "pairs": pairs, "sources": len(train_sources)},
        "sets": {
            name: {
                "file": set_file(name),
                "sources": len(s),
                "references": sum(len(r) for r in s.references),
                "lowercase": s.lowercase,
                "in_train": int(is_member(train_sources, hash_texts(s.sources)).sum()),
            }
            for name, s in sets.items()
        },
        "test_set": primary_test_set(sets),
        "cleaning": {**report.as_dict(), "first_line": dict(report.examples)},
        "config": _jsonable(config["data"]),
        "corpus": None if corpus is None else str(corpus),
    }


def _origin(spec: EvalSpec) -> str:
    return " + ".join(str(p) for p in (spec.src, *spec.refs))


def _describe(eval_set: EvalSet, info: dict) -> str:
    n, k = info["sources"], info["in_train"]
    case = ", scored case-insensitively" if info["lowercase"] else ""
    return (
        f"{eval_set.name}: {n:,} sources, {info['references']:,} references ({info['from']})"
        f"{case}; {k:,} sources ({k / max(n, 1):.1%}) also occur in train"
    )


def _commit(work: Path, folder: Path, summary: dict) -> None:
    """Move the finished files into ``folder``, the summary last; then drop ``work``."""
    overlap = {
        name: {"sources": info["sources"], "in_train": info["in_train"]}
        for name, info in summary["sets"].items()
    }
    cleaning = {k: summary["cleaning"][k] for k in ("lines_read", "kept", "dropped")}
    for name, content in (("overlap.json", overlap), ("cleaning.json", cleaning)):
        (work / name).write_text(json.dumps(content, indent=2), encoding="utf-8")
    names = ["train.tsv", *(info["file"] for info in summary["sets"].values())]
    for name in [*names, "overlap.json", "cleaning.json"]:
        os.replace(work / name, folder / name)
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    (work / SUMMARY).write_text(text, encoding="utf-8")
    os.replace(work / SUMMARY, folder / SUMMARY)
    shutil.rmtree(work, ignore_errors=True)


def _saved_summary(folder: Path) -> dict | None:
    """The summary of a finished data stage in ``folder``, or None (nothing, or incomplete)."""
    path = Path(folder) / SUMMARY
    if not path.is_file():
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    files = [summary["train"]["file"], *(s["file"] for s in summary["sets"].values())]
    return summary if all((Path(folder) / f).is_file() for f in files) else None


def _warn_if_changed(saved: dict, config: dict, corpus: Path | None, log) -> None:
    now = _jsonable(config["data"])
    changed = [
        f"data.{k}"
        for k in sorted(set(now) | set(saved["config"]))
        if now.get(k) != saved["config"].get(k) and k not in SPEED_ONLY["data"]
    ]
    if saved.get("corpus") != (None if corpus is None else str(corpus)):
        changed.append("the corpus path")
    if changed:
        log(
            f"warning: {', '.join(changed)} changed since the data were prepared; the saved data "
            "are used (delete the data folder to prepare them again)"
        )


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def _write_set(path: Path, eval_set: EvalSet, lines: list[list[int]] | None = None) -> None:
    """``id, line, src, tgt``: one row per reference. ``line``: the sentence's line in its
    files for an own set (1-based); for a held-out one, the corpus line of each reference."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(SET_HEADER)
        for i, (src, refs) in enumerate(zip(eval_set.sources, eval_set.references, strict=True)):
            at = lines[i] if lines is not None else [i + 1] * len(refs)
            f.write("".join(f"{i}\t{n}\t{src}\t{ref}\n" for n, ref in zip(at, refs, strict=True)))


def _tsv_rows(frame: pd.DataFrame) -> str:
    lines, srcs, tgts = (frame[c].tolist() for c in ("line", "src", "tgt"))
    return "".join(f"{n}\t{s}\t{t}\n" for n, s, t in zip(lines, srcs, tgts, strict=True))


def hash_texts(texts) -> np.ndarray:
    """64-bit hashes of strings (pandas' keyed SipHash: the same in every run and process)."""
    values = texts.to_numpy(dtype=object) if isinstance(texts, pd.Series) else list(texts)
    return pd.util.hash_array(np.asarray(values, dtype=object))


def is_member(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values[i] in sorted_values`` for each i, by binary search (np.isin was 10x slower)."""
    if not len(sorted_values):
        return np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return sorted_values[at] == values


def _count_lines(path: Path) -> int:
    """Lines of a file, counted in 1 MiB blocks (0.1 s for 2 million lines), for progress."""
    count, last = 0, b"\n"
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                count += block.count(b"\n")
                last = block[-1:]
    except OSError:
        return 0  # the reader raises the error that names the file
    return count + (last != b"\n")


def _progress(desc: str, total: int | None):
    """A tqdm bar of lines with their rate; redrawn every 30 s when stderr is not a terminal."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total or None,
        desc=desc,
        unit=" lines",
        unit_scale=True,
        dynamic_ncols=True,
        mininterval=1.0 if os.isatty(2) else 30.0,
        file=sys.stderr,
    )


def load_eval_sets(folder: Path) -> dict[str, EvalSet]:
    """The prepared dev and test sets of a data folder: ``dev`` first, then each test set.

    A folder written by :func:`save_splits` (no summary) gives its dev and test splits.
    """
    folder = Path(folder)
    summary = _saved_summary(folder)
    if summary is None:
        if (folder / "dev.tsv").is_file() and (folder / "test.tsv").is_file():
            frames = {name: _read_table(folder / f"{name}.tsv") for name in ("dev", "test")}
            return {name: EvalSet(name, *references(frame)) for name, frame in frames.items()}
        raise CorpusError(f"{folder}: no prepared data (no {SUMMARY}); run the data stage first")
    return {
        name: _read_set(folder / info["file"], name, info["lowercase"])
        for name, info in summary["sets"].items()
    }


def _read_set(path: Path, name: str, lowercase: bool) -> EvalSet:
    frame = _read_table(path)
    grouped = frame.groupby("id", sort=True)
    return EvalSet(
        name, grouped["src"].first().tolist(), grouped["tgt"].agg(list).tolist(), lowercase
    )


def _read_table(path: Path, **options) -> pd.DataFrame:
    return pd.read_csv(
        path,
        sep="\t",
        dtype={"src": str, "tgt": str},
        keep_default_na=False,
        quoting=3,
        **options,
    )


def iter_train(folder: Path, chunk_lines: int = CHUNK_LINES) -> Iterator[pd.DataFrame]:
    """``train.tsv`` in frames of at most ``chunk_lines`` pairs (columns line, src, tgt)."""
    yield from _iter_train(folder, chunk_lines)


def _iter_train(folder: Path, chunk_lines: int, columns=None) -> Iterator[pd.DataFrame]:
    with _read_table(Path(folder) / "train.tsv", chunksize=chunk_lines, usecols=columns) as chunks:
        yield from chunks


def count_train(folder: Path) -> int:
    """Training pairs in the folder (from its summary; counted when there is none)."""
    summary = _saved_summary(Path(folder))
    if summary is not None:
        return int(summary["train"]["pairs"])
    return max(_count_lines(Path(folder) / "train.tsv") - 1, 0)


def sample_train(
    folder: Path, n: int, seed: int, *, chunk_lines: int = CHUNK_LINES
) -> tuple[list[str], list[str]]:
    """A uniform random sample of at most ``n`` training pairs: (sources, targets), in file
    order, the same for the same seed. For SentencePiece, which needs a sample, not the corpus.

    The pair count is known, so ``n`` of the line numbers are drawn without replacement and
    the file is streamed once, ``chunk_lines`` pairs at a time; what is held is the sample,
    the chosen line numbers and one chunk.
    """
    total = count_train(folder)
    chosen = (
        np.arange(total)
        if n >= total
        else np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
    )
    sources, targets, start = [], [], 0
    for chunk in _iter_train(folder, chunk_lines, ["src", "tgt"]):
        low, high = np.searchsorted(chosen, [start, start + len(chunk)])
        rows = chosen[low:high] - start
        sources += chunk["src"].to_numpy(dtype=object)[rows].tolist()
        targets += chunk["tgt"].to_numpy(dtype=object)[rows].tolist()
        start += len(chunk)
    return sources, targets
