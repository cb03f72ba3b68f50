"""The demo server's API in-process (every bad input, truncation, states, a SavedModel), then the
real server: 20 concurrent requests and the page driven by headless Chromium."""

from __future__ import annotations

import json
import queue
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from s2s.decoding.translator import Translator
from s2s.serving import app, engines, schemas

SENTENCES = ["我们走吧。", "你好吗？", "他很忙。", "我不知道。", "今天很冷。"]


@pytest.fixture(scope="module")
def engine(trained_run) -> engines.RunEngine:
    return engines.RunEngine(trained_run, clusters=4, sentences=40)


@pytest.fixture(scope="module")
def client(engine) -> TestClient:
    return TestClient(app.create_app(engine))


def python_translations(engine, sentences, **search) -> list:
    translator = Translator.from_config(
        engine.model, engine.src_tok, engine.tgt_tok, engine.config, **search
    )
    return translator.translate(sentences)


def test_translate_answers_like_the_translator_with_pieces_and_attention(engine, client):
    answer = client.post("/api/translate", json={"text": "\n".join([*SENTENCES, ""]), "nbest": 3})
    assert answer.status_code == 200, answer.text
    lines = answer.json()["lines"]
    expected = python_translations(engine, SENTENCES)
    assert [line["translation"] for line in lines[:-1]] == [h.text for h in expected]
    for line, hyp in zip(lines, expected, strict=False):
        assert [(h["text"], round(h["score"], 4)) for h in line["hypotheses"]] == [
            (t, round(s, 4)) for t, s in hyp.nbest
        ]
        best = line["hypotheses"][0]
        weights = np.array(best["attention"])
        assert weights.shape == (len(best["pieces"]), len(line["source_pieces"]))
        assert np.allclose(weights.sum(1), 1.0, atol=1e-3)  # each step attends to the source
        assert best["pieces"][-1] == "</s>"  # every hypothesis ends (forced at the limit)
        assert engine.tgt_tok.sp.decode_pieces(best["pieces"][:-1]) == best["text"]
    assert lines[-1] == {  # an empty line: an empty translation, nothing searched
        "source": "",
        "source_pieces": [],
        "truncated": False,
        "translation": "",
        "score": 0.0,
        "hypotheses": [],
    }
    assert answer.json()["settings"] == {"beam_size": 3, "alpha": 0.6, "sampling": None}


def test_beam_one_is_greedy_and_sampling_follows_its_seed(engine, client):
    greedy = client.post("/api/translate", json={"text": SENTENCES[0], "beam_size": 1}).json()
    assert (
        greedy["lines"][0]["translation"]
        == python_translations(engine, SENTENCES[:1], beam_size=1)[0].text
    )
    sample = {"temperature": 1.5, "top_k": 0, "seed": 7}
    one, two = (
        client.post("/api/translate", json={"text": SENTENCES[0], "sampling": sample}).json()
        for _ in range(2)
    )
    assert one["lines"] == two["lines"] and one["settings"]["sampling"] == sample


def test_an_over_long_line_is_truncated_and_says_so(engine, client):
    text = "我们走吧" * 40
    line = client.post("/api/translate", json={"text": text}).json()["lines"][0]
    translator = engine.translator(schemas.TranslateRequest(text=""))
    assert line["truncated"] and len(line["source_pieces"]) == translator.max_src_len
    assert line["translation"] == python_translations(engine, [text])[0].text


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        (b'{"text": "hi"', 422, "JSON"),
        (json.dumps({"text": "hi", "beam": 3}).encode(), 422, "beam"),
        (json.dumps({"text": "hi", "beam_size": 0}).encode(), 422, "beam_size"),
        (json.dumps({"text": "hi", "beam_size": 1000}).encode(), 422, "beam_size"),
        (json.dumps({"text": "hi", "beam_size": 2, "nbest": 3}).encode(), 422, "nbest"),
        (json.dumps({"text": "hi", "sampling": {"temperature": 0}}).encode(), 422, "temperature"),
        (json.dumps({"text": 5}).encode(), 422, "text"),
        (json.dumps({"text": "我" * (1 << 20)}).encode(), 413, "limit"),
        (json.dumps({"text": "我" * (schemas.MAX_CHARS + 1)}).encode(), 422, "text"),
        (json.dumps({"text": "a\n" * schemas.MAX_LINES}).encode(), 422, "lines"),
        (b'{"text": "\xff\xfe\xfa"}', 400, "utf-8"),
    ],
    ids=[
        "invalid-json",
        "unknown-field",
        "beam-0",
        "beam-1000",
        "nbest-over-beam",
        "temperature-0",
        "text-not-a-string",
        "body-1MB",
        "text-too-long",
        "too-many-lines",
        "not-utf8",
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem_and_the_server_keeps_serving(
    client, body, status, named
):
    answer = client.post(
        "/api/translate", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == status, answer.text
    assert named.lower() in answer.json()["detail"].lower()
    assert client.post("/api/translate", json={"text": SENTENCES[0]}).status_code == 200


def test_states_are_drawn_on_the_dev_automaton(engine, client):
    automaton = client.get("/api/automaton").json()
    assert automaton["k"] == 4 and set(automaton["clusters"]) <= set(range(4))
    assert len(automaton["points"]) == len(automaton["pieces"]) == len(automaton["clusters"])
    states = client.post("/api/states", json={"text": "\n" + SENTENCES[0]}).json()
    line = client.post("/api/translate", json={"text": SENTENCES[0]}).json()["lines"][0]
    assert states["pieces"] == line["source_pieces"]
    assert np.array(states["points"]).shape == (len(states["pieces"]), 2)
    assert set(states["clusters"]) <= set(range(4))
    assert client.post("/api/states", json={"text": "  "}).json()["pieces"] == []


def test_a_saved_model_serves_translations_and_refuses_other_search(trained_run, tmp_path):
    from s2s.serving.export import export

    engine = engines.SavedModelEngine(export(trained_run, tmp_path))
    client = TestClient(app.create_app(engine))
    assert client.get("/api/info").json()["features"]["attention"] is False
    answer = client.post("/api/translate", json={"text": "\n".join(SENTENCES), "nbest": 2})
    assert answer.status_code == 200, answer.text
    run = engines.RunEngine(trained_run)
    expected = run.translate(schemas.TranslateRequest(text="\n".join(SENTENCES), nbest=2))
    got = answer.json()["lines"]
    assert [line["translation"] for line in got] == [line.translation for line in expected]
    refused = client.post("/api/translate", json={"text": "hi", "beam_size": 1})
    assert refused.status_code == 422 and "beam 3" in refused.json()["detail"]
    assert client.get("/api/automaton").status_code == 422


# --- the real server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(trained_run):
    """``s2s demo`` in its own process on a port it picks itself (``--port 0``: no port is
    chosen here and reused later); yields its URL and its process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "s2s", "demo", "--run", str(trained_run), "--port", "0",
         "--clusters", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    said: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [said.put(line) for line in process.stdout])
    reader.daemon = True
    reader.start()
    url, seen = None, []
    while url is None:
        try:
            line = said.get(timeout=300)
        except queue.Empty:
            process.kill()
            pytest.fail("the demo server said nothing for 300 s:\n" + "".join(seen))
        seen.append(line)
        if match := re.search(r"on (http://127\.0\.0\.1:\d+/)", line):
            url = match.group(1)
        elif process.poll() is not None:
            pytest.fail("the demo server exited:\n" + "".join(seen))
    yield url, process
    process.terminate()
    process.wait(timeout=30)


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.load(answer)


def cli_translate(run: Path, sentences: list[str], *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "s2s", "translate", "--run", str(run), *args],
        input="\n".join(sentences) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def test_twenty_concurrent_requests_all_get_their_own_answer(server, engine):
    server, _ = server
    texts = [SENTENCES[i % len(SENTENCES)] for i in range(20)]
    beams = [1 + i % 3 for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        answers = list(
            pool.map(
                lambda tb: post(server + "api/translate", {"text": tb[0], "beam_size": tb[1]}),
                zip(texts, beams, strict=True),
            )
        )
    expected = {  # one translator a beam size, each translating every sentence
        beam: {
            h_text: h
            for h_text, h in zip(
                SENTENCES, python_translations(engine, SENTENCES, beam_size=beam), strict=True
            )
        }
        for beam in set(beams)
    }
    for text, beam, answer in zip(texts, beams, answers, strict=True):
        assert answer["lines"][0]["source"] == text
        assert answer["lines"][0]["translation"] == expected[beam][text].text
        assert answer["settings"]["beam_size"] == beam


def browser():
    """Headless Chromium through Selenium, or a skip that says what is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip(
            "Chromium is not installed (.ci/run installs Debian's chromium and chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1200"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def test_the_page_translates_as_the_cli_does(server, trained_run, tmp_path):
    server, _ = server
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    sentence = SENTENCES[0]
    expected_beam, expected_greedy = (
        cli_translate(trained_run, [sentence], *args)[0] for args in ((), ("--beam", "1"))
    )
    driver = browser()
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(server)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))

        def settled(d):
            body = d.find_element(By.TAG_NAME, "body")
            return body.get_attribute("data-pending") == "0" and d.find_elements(
                By.ID, "translation-0"
            )

        driver.find_element(By.ID, "source").send_keys(sentence)
        wait.until(settled)
        assert driver.find_element(By.ID, "translation-0").text == expected_beam
        assert "beam 3" in driver.find_element(By.ID, "status").text

        heatmap = driver.find_element(By.ID, "heatmap")
        line = post(server + "api/translate", {"text": sentence})["lines"][0]
        for axis, pieces in (("x", line["source_pieces"]), ("y", line["hypotheses"][0]["pieces"])):
            labels = [t.text for t in heatmap.find_elements(By.CSS_SELECTOR, f".{axis}tick text")]
            assert labels == pieces  # every piece labelled as it is ("</s>" too), none thinned
        heatmap.screenshot(str(tmp_path / "heatmap.png"))
        assert (tmp_path / "heatmap.png").stat().st_size > 2000

        beam = driver.find_element(By.ID, "beam")
        beam.send_keys(Keys.CONTROL, "a")
        beam.send_keys("1", Keys.TAB)
        wait.until(lambda d: "greedy" in d.find_element(By.ID, "status").text and settled(d))
        assert driver.find_element(By.ID, "translation-0").text == expected_greedy
        logs = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not logs, logs
    finally:
        driver.quit()


def resident_mb(process) -> float:
    """The resident memory of a process (Linux), in MB."""
    status = Path(f"/proc/{process.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def test_a_chunked_body_is_refused_as_it_passes_the_limit_not_read_whole(server):
    """No Content-Length: the body arrives in chunks. The server answers 413 once it has read
    64 KiB, while the client is still sending (it used to read the whole body first), keeps
    its memory, and goes on serving."""
    url, process = server
    host, port = re.match(r"http://([^:]+):(\d+)/", url).groups()
    before = resident_mb(process)
    chunk = b"x" * (64 * 1024)
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent, answer = 0, b""
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(
            b"POST /api/translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        while sent < 256 * len(chunk):  # at most 16 MB offered
            if select.select([conn], [], [], 0)[0]:  # the server has answered
                break
            try:
                conn.sendall(frame)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += len(chunk)
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 8 * 1024 * 1024  # answered long before the body could end
    assert resident_mb(process) - before < 32
    assert post(url + "api/translate", {"text": SENTENCES[0]})["lines"][0]["source"] == SENTENCES[0]


def test_top_k_beyond_the_vocabulary_is_a_422_naming_it(engine, client):
    too_many = engine.tgt_tok.vocab_size + 1
    body = {"text": SENTENCES[0], "sampling": {"top_k": too_many}}
    answer = client.post("/api/translate", json=body)
    assert answer.status_code == 422 and "top_k" in answer.json()["detail"]
    body["sampling"]["top_k"] = engine.tgt_tok.vocab_size  # every piece: allowed
    assert client.post("/api/translate", json=body).status_code == 200


def test_fifty_length_penalties_share_one_traced_search(trained_run):
    """alpha (like temperature and seed) is an input of the traced search: after warm-up no
    request retraces it, and each request searches with its own alpha."""
    engine = engines.RunEngine(trained_run, clusters=4, sentences=40)
    engine.translate(schemas.TranslateRequest(text="warm up"))
    translator = engine.translator(schemas.TranslateRequest(text=""))
    traced = translator.traces
    alphas = [round(0.05 * i, 2) for i in range(50)]
    answers = {
        alpha: engine.translate(schemas.TranslateRequest(text=SENTENCES[2], alpha=alpha))
        for alpha in alphas
    }
    assert traced == 1 and translator.traces == traced
    for alpha in (0.0, 2.45):
        expected = python_translations(engine, SENTENCES[2:3], alpha=alpha)[0]
        assert answers[alpha][0].translation == expected.text
        assert answers[alpha][0].score == pytest.approx(expected.score, abs=1e-4)


def test_the_api_names_the_run_not_its_path(client, trained_run):
    assert client.get("/api/info").json()["run"] == trained_run.name


def test_a_host_other_machines_reach_is_warned_about(capsys):
    with app.listen("0.0.0.0", 0) as sock:
        assert sock.getsockname()[1] > 0  # a free port, bound and listening
    assert "warning: --host 0.0.0.0" in capsys.readouterr().err
    with app.listen("127.0.0.1", 0):
        pass
    assert capsys.readouterr().err == ""
    assert app.is_loopback("127.0.0.1") and app.is_loopback("::1") and app.is_loopback("localhost")
    assert not app.is_loopback("0.0.0.0") and not app.is_loopback("example.org")
