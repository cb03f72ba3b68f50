"""Read a parallel corpus a chunk at a time: a TSV file, two line-aligned files, or a corpus
of the manifest (:mod:`s2s.data.corpora`). Lines that cannot be read (not UTF-8, missing
columns) are counted in a :class:`~s2s.data.cleaning.CleaningReport`, never raised; a file that
cannot be read at all raises :class:`CorpusError` naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from s2s.data.cleaning import CleaningReport
from s2s.data.corpora import corpus_entry, locate, locate_parallel, resolve_file
from s2s.data.errors import CorpusError

CHUNK_LINES = 100_000  # lines read, normalised and cleaned at a time (bounds the memory)


def iter_tsv(
    path: Path,
    columns: dict,
    src_lang: str,
    tgt_lang: str,
    report: CleaningReport,
    limit: int | None = None,
    chunk_lines: int = CHUNK_LINES,
) -> Iterator[pd.DataFrame]:
    """``path`` (one pair a line, tab-separated) in frames of ``line, src, tgt`` of at most
    ``chunk_lines`` lines. Lines that are not valid UTF-8 or lack the needed columns are counted
    into ``report``, not raised; a header names the columns when ``columns`` gives names."""
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


def corpus_files(config: dict, path: Path | None = None) -> tuple[str, list[Path]]:
    """What :func:`open_corpus` reads: ``("parallel", [src, tgt])`` or ``("tsv", [file])``.

    Relative file names are looked for as given, then under ``$S2S_CORPUS_DIR`` and the cache
    (:func:`s2s.data.corpora.resolve_file`); a manifest corpus is found by
    :func:`s2s.data.corpora.locate`.
    """
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
    data = config["data"]
    src, tgt, limit = data["src_lang"], data["tgt_lang"], data.get("limit")
    kind, files = corpus_files(config, path)
    for file in files:  # refused now, before any progress bar or work starts
        check_readable(file)
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


def iter_parallel(
    src_path: Path,
    tgt_path: Path,
    report: CleaningReport,
    limit: int | None = None,
    chunk_lines: int = CHUNK_LINES,
) -> Iterator[pd.DataFrame]:
    """Two line-aligned plain-text files (line ``i`` of one translates line ``i`` of the other)
    in frames of ``line, src, tgt`` of at most ``chunk_lines`` lines. Files whose line counts
    differ are refused: the pairs could not be trusted."""
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


def check_readable(path: Path) -> None:
    """Raise :class:`CorpusError` naming ``path`` when it cannot be opened or is empty."""
    try:
        with open(path, "rb") as f:
            empty = not f.read(1)
    except OSError as e:
        raise CorpusError(f"{path}: cannot open: {e.strerror}") from e
    if empty:
        raise CorpusError(f"{path}: the file is empty")


def count_lines(path: Path) -> int:
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


def read_table(path: Path, **options) -> pd.DataFrame:
    """A TSV file the data stage wrote (a header, no quoting, empty strings kept as they are);
    ``options`` go to ``pandas.read_csv`` (``chunksize``, ``usecols``)."""
    return pd.read_csv(
        path,
        sep="\t",
        dtype={"src": str, "tgt": str},
        keep_default_na=False,
        quoting=3,
        **options,
    )
