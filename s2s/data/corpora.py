"""Find a known corpus on disk, or download the published export into the cache.

Where a corpus is looked for, in order:
1. ``$S2S_CORPUS_DIR/<name>/<file>`` (offline copies; CI points this at ``../shared/corpora``);
2. ``$S2S_HOME/corpora/<name>/<file>`` (the download cache, default ``~/.cache/s2s``);
3. the manifest's URL, downloaded into the cache (a corpus without one is never downloaded).

A ``format: parallel`` corpus (``tvsub``) has one file per language (``files``). Other files a
config names (own dev/test sets, ``data.src_file``) may be relative paths: they are looked for
as given, then under ``$S2S_CORPUS_DIR`` and the cache (:func:`resolve_file`).

A download sends a User-Agent, shows a progress bar, writes to ``<file>.part`` and renames it
only once the size and sha256 match the manifest (when it records them), retries a failed or
truncated transfer, and unpacks archives only if no member would land outside the cache folder.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

from s2s.config.loading import RECIPES, read_yaml

USER_AGENT = "s2s-nmt/0.1 (+https://github.com/s2s-nmt/s2s)"


class CorpusNotFound(FileNotFoundError):
    """No local copy and no way to download one."""


class DownloadError(OSError):
    """A transfer failed or came back incomplete."""


class ChecksumMismatch(DownloadError):
    """The download is complete but is not the file the manifest names."""


class UnsafeArchive(DownloadError):
    """An archive member would be written outside the target folder."""


def manifest() -> dict:
    return read_yaml(RECIPES / "corpora.yaml")


def corpus_entry(name: str) -> dict:
    known = manifest()
    if name not in known:
        raise CorpusNotFound(
            f"unknown corpus {name!r}; data/corpora.yaml knows: {', '.join(known)}"
        )
    return known[name]


def cache_dir() -> Path:
    return Path(os.environ.get("S2S_HOME", Path.home() / ".cache" / "s2s")) / "corpora"


def candidate_paths(name: str, file: str | None = None) -> list[Path]:
    """Where ``file`` of corpus ``name`` (default: its ``file``) is looked for, in order."""
    file = file or corpus_entry(name)["file"]
    paths = []
    if os.environ.get("S2S_CORPUS_DIR"):
        paths.append(Path(os.environ["S2S_CORPUS_DIR"]) / name / file)
    paths.append(cache_dir() / name / file)
    return paths


def locate(name: str, download: bool = True, file: str | None = None) -> Path:
    """Return the path of corpus ``name``'s text file, downloading it if allowed and needed.

    ``file`` names one of the corpus's files (``files`` in the manifest) instead of its
    ``file``. A corpus without a ``url`` (a licence that forbids redistribution) is never
    downloaded: the message says where to put a copy.
    """
    entry = corpus_entry(name)
    file = file or entry["file"]
    paths = candidate_paths(name, file)
    for path in paths:
        if path.is_file():
            return path
    looked = "\n  ".join(str(p) for p in paths)
    local_copy = f"$S2S_CORPUS_DIR/{name}/{file}"
    if not download or not entry.get("url"):
        why = "" if entry.get("url") else f" (it cannot be downloaded: {entry.get('licence')})"
        raise CorpusNotFound(
            f"corpus {name!r} not found{why}; looked at:\n  {looked}\nPut a copy at {local_copy}."
        )
    try:
        return fetch(name)
    except OSError as e:
        raise CorpusNotFound(
            f"corpus {name!r} not found locally and the download failed ({e}); "
            f"looked at:\n  {looked}\nPut a copy at {local_copy}."
        ) from e


def locate_parallel(name: str, src_lang: str, tgt_lang: str) -> tuple[Path, Path]:
    """The line-aligned source and target files of a ``format: parallel`` corpus."""
    files = corpus_entry(name).get("files") or {}
    for lang in (src_lang, tgt_lang):
        if lang not in files:
            raise CorpusNotFound(
                f"corpus {name!r} has no {lang!r} file in data/corpora.yaml "
                f"(has: {', '.join(files)})"
            )
    return locate(name, file=files[src_lang]), locate(name, file=files[tgt_lang])


def file_candidates(path: str | Path) -> list[Path]:
    """Where a file named in a config is looked for: as given (absolute, or relative to the
    working directory), then, for a relative path, under ``$S2S_CORPUS_DIR`` and the cache.

    So a recipe can name ``tvsub/dev.zh`` and find it wherever the corpora are kept.
    """
    path = Path(path)
    if path.is_absolute():
        return [path]
    roots = [Path(os.environ["S2S_CORPUS_DIR"])] if os.environ.get("S2S_CORPUS_DIR") else []
    return [path, *(root / path for root in [*roots, cache_dir()])]


def resolve_file(path: str | Path) -> Path:
    """The first of :func:`file_candidates` that exists; ``path`` itself when none does (so
    that opening it fails with the name the config gave)."""
    return next((p for p in file_candidates(path) if p.is_file()), Path(path))


def fetch(name: str, entry: dict | None = None) -> Path:
    """Download the published export into the cache and unpack it; returns the text file."""
    entry = entry or corpus_entry(name)
    target_dir = cache_dir() / name
    target_dir.mkdir(parents=True, exist_ok=True)
    out = target_dir / entry["file"]
    if entry.get("archive") != "zip":
        return download(entry["url"], out, entry.get("sha256"), entry.get("size"))
    archive = download(
        entry["url"], target_dir / Path(entry["url"]).name, entry.get("sha256"), entry.get("size")
    )
    try:
        safe_extract(archive, target_dir, entry["file"])
    finally:
        archive.unlink(missing_ok=True)
    return out


def download(
    url: str,
    dest: Path,
    sha256: str | None = None,
    size: int | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 2.0,
) -> Path:
    """Fetch ``url`` to ``dest`` through ``dest.part``; rename only after the checks pass."""
    part = dest.with_name(dest.name + ".part")
    last: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            digest, received = _transfer(url, part, timeout)
            if size is not None and received != size:
                raise ChecksumMismatch(f"{url}: {received} bytes, the manifest says {size}")
            if sha256 and digest != sha256:
                raise ChecksumMismatch(f"{url}: sha256 {digest}, the manifest says {sha256}")
            part.replace(dest)
            return dest
        except ChecksumMismatch:
            part.unlink(missing_ok=True)
            raise
        except (OSError, http.client.HTTPException) as e:  # network errors, truncation
            part.unlink(missing_ok=True)
            last = e
            if attempt < retries:
                print(f"download attempt {attempt} failed ({e}); retrying", file=sys.stderr)
                time.sleep(backoff * attempt)
    raise DownloadError(f"{url}: {retries} attempts failed; the last said: {last}")


def _transfer(url: str, part: Path, timeout: float) -> tuple[str, int]:
    """One attempt: stream to ``part`` with a progress bar; returns (sha256, bytes received)."""
    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest, received = hashlib.sha256(), 0
    with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as f:
        expected = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(
            total=expected, unit="B", unit_scale=True, desc=part.name[:-5], file=sys.stderr
        ) as bar:
            while chunk := response.read(1 << 16):
                f.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if expected is not None and received != expected:
        raise DownloadError(f"{url}: transfer ended after {received} of {expected} bytes")
    return digest.hexdigest(), received


def safe_extract(archive: Path, target_dir: Path, member: str) -> Path:
    """Extract ``member`` from a zip after checking that no member escapes ``target_dir``."""
    root = target_dir.resolve()
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if not (root / info.filename).resolve().is_relative_to(root):
                raise UnsafeArchive(f"{archive.name}: member {info.filename!r} escapes {root}")
        if member not in zf.namelist():
            raise DownloadError(f"{archive.name} has no member {member!r}")
        out = target_dir / member
        part = out.with_name(out.name + ".part")
        with zf.open(member) as src, open(part, "wb") as dst:
            shutil.copyfileobj(src, dst)
        part.replace(out)
    return out
