import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from s2s.data import corpora


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(corpus_file):
    """A real HTTP server on 127.0.0.1 serving a zip made from a slice of the real corpus."""
    slice_ = b"".join(corpus_file.read_bytes().splitlines(keepends=True)[:300])
    files = {
        "/cmn-eng.zip": zip_bytes({"cmn.txt": slice_}),
        "/evil.zip": zip_bytes({"../evil.txt": b"x", "cmn.txt": slice_}),
    }
    hits: list[tuple[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append((self.path, self.headers.get("User-Agent", "")))
            if self.path == "/truncated.zip":  # promises more than it sends, every time
                body = files["/cmn-eng.zip"]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                return
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}", files, slice_, hits
    httpd.shutdown()


def entry(url: str, **extra) -> dict:
    return {"url": url, "archive": "zip", "file": "cmn.txt", **extra}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("S2S_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "corpora"


def test_download_checks_the_checksum_then_unpacks(server, cache):
    base, files, slice_, hits = server
    digest = hashlib.sha256(files["/cmn-eng.zip"]).hexdigest()
    size = len(files["/cmn-eng.zip"])
    path = corpora.fetch("t", entry(f"{base}/cmn-eng.zip", sha256=digest, size=size))
    assert path == cache / "t" / "cmn.txt" and path.read_bytes() == slice_
    assert sorted(p.name for p in (cache / "t").iterdir()) == ["cmn.txt"]  # no archive, no .part
    assert hits[-1][1].startswith("s2s-nmt/")


def test_a_checksum_mismatch_keeps_nothing_and_says_so(server, cache):
    base, *_ = server
    with pytest.raises(corpora.ChecksumMismatch, match="sha256"):
        corpora.fetch("t", entry(f"{base}/cmn-eng.zip", sha256="0" * 64))
    assert not any((cache / "t").iterdir())


def test_a_truncated_transfer_is_retried_then_refused(server, cache):
    base, _, _, hits = server
    before = len(hits)
    with pytest.raises(corpora.DownloadError, match="3 attempts"):
        corpora.download(f"{base}/truncated.zip", cache / "x.zip", backoff=0.0)
    assert len(hits) - before == 3
    assert not (cache / "x.zip").exists() and not (cache / "x.zip.part").exists()


def test_a_member_escaping_the_folder_is_refused(server, cache):
    base, *_ = server
    with pytest.raises(corpora.UnsafeArchive, match=r"\.\./evil\.txt"):
        corpora.fetch("t", entry(f"{base}/evil.zip"))
    assert not (cache / "evil.txt").exists() and not (cache / "t" / "cmn.txt").exists()


def test_a_missing_corpus_names_every_place_looked_at(monkeypatch, tmp_path):
    monkeypatch.setenv("S2S_CORPUS_DIR", str(tmp_path / "offline"))
    with pytest.raises(corpora.CorpusNotFound) as error:
        corpora.locate("tatoeba-cmn-eng", download=False)
    message = str(error.value)
    assert str(tmp_path / "offline" / "tatoeba-cmn-eng" / "cmn.txt") in message
    assert str(tmp_path / "home" / "corpora" / "tatoeba-cmn-eng" / "cmn.txt") in message


def parallel_entry(monkeypatch, **extra) -> None:
    entry = {"format": "parallel", "files": {"zh": "train.zh", "en": "train.en"}, **extra}
    monkeypatch.setattr(corpora, "manifest", lambda: {"tv": {"url": None, **entry}})


def test_a_parallel_corpus_is_found_file_by_file(monkeypatch, tmp_path):
    parallel_entry(monkeypatch)
    (tmp_path / "offline" / "tv").mkdir(parents=True)
    for name in ("train.zh", "train.en"):
        (tmp_path / "offline" / "tv" / name).write_text("x\n", encoding="utf-8")
    monkeypatch.setenv("S2S_CORPUS_DIR", str(tmp_path / "offline"))
    src, tgt = corpora.locate_parallel("tv", "en", "zh")
    assert (src.name, tgt.name) == ("train.en", "train.zh")
    with pytest.raises(corpora.CorpusNotFound, match=r"no 'fr' file .*has: zh, en"):
        corpora.locate_parallel("tv", "fr", "zh")


def test_a_corpus_without_url_is_never_downloaded_and_says_where_to_put_it(monkeypatch, tmp_path):
    parallel_entry(monkeypatch, licence="CC BY-NC-ND 4.0")
    monkeypatch.setenv("S2S_CORPUS_DIR", str(tmp_path / "offline"))
    monkeypatch.setattr(corpora, "fetch", lambda *a: pytest.fail("tried to download"))
    with pytest.raises(corpora.CorpusNotFound) as error:
        corpora.locate_parallel("tv", "zh", "en")
    message = str(error.value)
    assert "cannot be downloaded: CC BY-NC-ND 4.0" in message
    assert str(tmp_path / "offline" / "tv" / "train.zh") in message
    assert "$S2S_CORPUS_DIR/tv/train.zh" in message


def test_relative_files_are_looked_for_here_then_in_the_corpus_dir_then_the_cache(
    monkeypatch, tmp_path, cache
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("S2S_CORPUS_DIR", str(tmp_path / "offline"))
    assert corpora.file_candidates("tv/dev.zh") == [
        Path("tv/dev.zh"),
        tmp_path / "offline" / "tv" / "dev.zh",
        cache / "tv" / "dev.zh",
    ]
    assert corpora.resolve_file("tv/dev.zh") == Path("tv/dev.zh")  # nowhere: as given
    (cache / "tv").mkdir(parents=True)
    (cache / "tv" / "dev.zh").write_text("x\n", encoding="utf-8")
    assert corpora.resolve_file("tv/dev.zh") == cache / "tv" / "dev.zh"
    (tmp_path / "offline" / "tv").mkdir(parents=True)
    (tmp_path / "offline" / "tv" / "dev.zh").write_text("x\n", encoding="utf-8")
    assert corpora.resolve_file("tv/dev.zh") == tmp_path / "offline" / "tv" / "dev.zh"
    (tmp_path / "tv").mkdir()
    (tmp_path / "tv" / "dev.zh").write_text("x\n", encoding="utf-8")
    assert corpora.resolve_file("tv/dev.zh") == Path("tv/dev.zh")
    assert corpora.file_candidates(tmp_path / "a.zh") == [tmp_path / "a.zh"]


def test_the_manifest_names_tvsub_with_its_licence_and_no_download():
    entry = corpora.corpus_entry("tvsub")
    assert entry["format"] == "parallel" and entry["url"] is None
    assert entry["files"] == {"zh": "train.zh", "en": "train.en"}
    assert "CC BY-NC-ND 4.0" in entry["licence"]
