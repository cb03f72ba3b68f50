import hashlib
import http.server
import io
import threading
import zipfile

import pytest

from s2s import corpora


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
