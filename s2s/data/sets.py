"""Dev and test sets: each source with all its references, in memory (:class:`EvalSet`), in
the config (``data.dev``, ``data.test``: :func:`eval_specs`) and on disk (one row per reference:
``id, line, src, tgt``).

A set is held out from the corpus by the data stage (:mod:`s2s.data.stage`), or read from
line-aligned files the config names (an own set: normalised like the corpus, never cleaned).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from s2s.data.corpora import resolve_file
from s2s.data.errors import CorpusError
from s2s.data.readers import read_table
from s2s.text.normalize import normalize

SET_HEADER = "id\tline\tsrc\ttgt\n"
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


def write_set(path: Path, eval_set: EvalSet, lines: list[list[int]] | None = None) -> None:
    """``id, line, src, tgt``: one row per reference. ``line``: the sentence's line in its
    files for an own set (1-based); for a held-out one, the corpus line of each reference."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(SET_HEADER)
        for i, (src, refs) in enumerate(zip(eval_set.sources, eval_set.references, strict=True)):
            at = lines[i] if lines is not None else [i + 1] * len(refs)
            f.write("".join(f"{i}\t{n}\t{src}\t{ref}\n" for n, ref in zip(at, refs, strict=True)))


def read_set(path: Path, name: str, lowercase: bool) -> EvalSet:
    frame = read_table(path)
    grouped = frame.groupby("id", sort=True)
    return EvalSet(
        name, grouped["src"].first().tolist(), grouped["tgt"].agg(list).tolist(), lowercase
    )
