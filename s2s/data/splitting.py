"""The data folder: the corpus cleaned into ``train.tsv``, dev and test sets held out from it
(or read from the config's own files), and a summary; memory bounded independently of the
corpus size. The first step of the run's data stage (:mod:`s2s.data.stage`).

folder/train.tsv           line, src, tgt: the training pairs (written a chunk at a time)
folder/<set file>.tsv      id, line, src, tgt: one row per reference; rows of a sentence share
                           its id (0, 1, ... in set order); dev.tsv, test.tsv, test-<name>.tsv
folder/summary.json        what was prepared (train pairs, each set's file, sizes, lowercase
                           flag and overlap, cleaning); written last, so its presence means done
folder/cleaning.json       the cleaning report (CleaningReport.as_dict)
folder/overlap.json        {set: {"sources": n, "in_train": k}}: sources also in training

:mod:`s2s.data.prepared` reads such a folder back.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from s2s.config.choices import SPEED_ONLY
from s2s.data.cleaning import Cleaner, CleaningReport, clean_chunks, hash_texts, is_member
from s2s.data.errors import CorpusError
from s2s.data.parallel import worker_count
from s2s.data.prepared import SUMMARY, TRAIN_HEADER, saved_summary
from s2s.data.readers import CHUNK_LINES, corpus_files, count_lines, open_corpus
from s2s.data.sets import (
    EvalSet,
    EvalSpec,
    eval_specs,
    primary_test_set,
    read_eval_set,
    set_file,
    write_set,
)

CARVED = "held out from the corpus"


def prepare_data_folder(
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
    saved = saved_summary(folder)
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
    """:func:`prepare_data_folder` once the own sets are read: clean, carve, write, commit."""
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
        write_set(work / info["file"], eval_set, lines.get(name))
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
    total = count_lines(corpus_files(config, corpus)[1][0])
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
    """Seeded choice of distinct sources (as sorted hashes) for each set to carve, in the order
    of ``carve`` (test first, then dev)."""
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


def _tsv_rows(frame) -> str:
    """A cleaned frame's ``line, src, tgt`` rows as TSV text."""
    lines, srcs, tgts = (frame[c].tolist() for c in ("line", "src", "tgt"))
    return "".join(f"{n}\t{s}\t{t}\n" for n, s, t in zip(lines, srcs, tgts, strict=True))


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
