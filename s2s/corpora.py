"""Find a known corpus on disk, or download the published export into the cache.

Where a corpus is looked for, in order:
1. ``$S2S_CORPUS_DIR/<name>/<file>`` (offline copies; CI points this at ``../shared/corpora``);
2. ``$S2S_HOME/corpora/<name>/<file>`` (the download cache, default ``~/.cache/s2s``);
3. the manifest's URL, downloaded into the cache.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from s2s.config import CONFIG_DIR, read_yaml

USER_AGENT = "s2s-nmt/0.1 (+https://github.com/s2s-nmt/s2s)"


class CorpusNotFound(FileNotFoundError):
    """No local copy and no way to download one."""


def manifest() -> dict:
    return read_yaml(CONFIG_DIR / "corpora.yaml")


def corpus_entry(name: str) -> dict:
    known = manifest()
    if name not in known:
        raise CorpusNotFound(
            f"unknown corpus {name!r}; data/corpora.yaml knows: {', '.join(known)}"
        )
    return known[name]


def cache_dir() -> Path:
    return Path(os.environ.get("S2S_HOME", Path.home() / ".cache" / "s2s")) / "corpora"


def candidate_paths(name: str) -> list[Path]:
    entry = corpus_entry(name)
    paths = []
    if os.environ.get("S2S_CORPUS_DIR"):
        paths.append(Path(os.environ["S2S_CORPUS_DIR"]) / name / entry["file"])
    paths.append(cache_dir() / name / entry["file"])
    return paths


def locate(name: str, download: bool = True) -> Path:
    """Return the path of corpus ``name``'s text file, downloading it if allowed and needed."""
    paths = candidate_paths(name)
    for path in paths:
        if path.is_file():
            return path
    looked = "\n  ".join(str(p) for p in paths)
    if not download:
        raise CorpusNotFound(f"corpus {name!r} not found; looked at:\n  {looked}")
    try:
        return fetch(name)
    except OSError as e:
        raise CorpusNotFound(
            f"corpus {name!r} not found locally and the download failed ({e}); "
            f"looked at:\n  {looked}\n"
            f"Put a copy at $S2S_CORPUS_DIR/{name}/{corpus_entry(name)['file']}."
        ) from e


def fetch(name: str) -> Path:
    """Download and unpack the published export into the cache; returns the text file's path."""
    entry = corpus_entry(name)
    target_dir = cache_dir() / name
    target_dir.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(entry["url"], headers={"User-Agent": USER_AGENT})
    with tempfile.NamedTemporaryFile(dir=target_dir, delete=False, suffix=".part") as tmp:
        with urllib.request.urlopen(request, timeout=60) as response:
            shutil.copyfileobj(response, tmp)
    archive = Path(tmp.name)
    try:
        out = target_dir / entry["file"]
        if entry.get("archive") == "zip":
            with zipfile.ZipFile(archive) as zf:
                with zf.open(entry["file"]) as member, open(out.with_suffix(".part2"), "wb") as f:
                    shutil.copyfileobj(member, f)
            out.with_suffix(".part2").replace(out)
        else:
            archive.replace(out)
        return out
    finally:
        archive.unlink(missing_ok=True)
