import json
import os
import re
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s2s.config import ConfigError, load_config
from s2s.data import (
    DROP_REASONS,
    CorpusError,
    clean,
    count_train,
    iter_train,
    load_eval_sets,
    load_splits,
    normalize,
    prepare_run_data,
    read_and_clean,
    read_corpus,
    read_parallel,
    read_tsv,
    references,
    sample_train,
    save_splits,
    split,
)
from s2s.evaluate import score
from s2s.parallel import worker_count

COLUMNS = {"en": 0, "zh": 1}


def write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "corpus.tsv"
    path.write_bytes(content)
    return path


def test_chinese_keeps_full_width_punctuation_while_nfkc_applies_elsewhere():
    assert normalize("你好，世界！真的？", "zh") == "你好，世界！真的？"
    assert normalize("ＡＢＣ１２３ 你好", "zh") == "ABC123 你好"
    assert normalize("Ｈｅｌｌｏ，  world！", "en") == "Hello, world!"


def test_control_characters_bom_and_spaces_are_normalised():
    assert normalize("\ufeffHi\x07  there\t!\r", "en") == "Hi there !"


def test_bad_lines_are_counted_with_their_line_numbers(tmp_path):
    path = write(
        tmp_path,
        "Hi.\t你好。\tx\n".encode()
        + b"\xff\xfe bad\t\xe4\n"
        + b"only one column\n"
        + "Bye.\t再见。\tx\n".encode(),
    )
    frame, report = read_tsv(path, COLUMNS, "zh", "en")
    assert list(frame["line"]) == [1, 4]
    assert report.lines_read == 4
    assert dict(report.dropped) == {"invalid_utf8": 1, "wrong_columns": 1}
    assert report.examples == {"invalid_utf8": 2, "wrong_columns": 3}


def test_cleaning_counts_every_dropped_pair(tmp_path):
    lines = [
        "Hi.\t你好。",
        "Hi.\t你好。",  # duplicate
        " \t你好。",  # empty
        "x" * 40 + "\t长",  # too long
        "Run.\t跑！",
        "OK.\tOK.",  # same as source (and no Chinese: counted once, by the first reason)
        "Tom.\tTom!",  # no Chinese character
        "\ufeffＡ１.\t好\r",  # BOM, full-width ASCII and CRLF are normalised, not dropped
    ]
    path = write(tmp_path, "\n".join(lines).encode() + b"\n")
    frame, report = read_tsv(path, COLUMNS, "zh", "en")
    frame = clean(frame, report, "zh", "en", max_chars=30)
    dropped = {"empty": 1, "too_long": 1, "same_as_source": 1, "no_chinese": 1, "duplicate": 1}
    assert report.as_dict() == {"lines_read": 8, "kept": 3, "dropped": dropped}
    assert frame["tgt"].iloc[-1] == "A1."
    assert report.kept + sum(report.dropped.values()) == report.lines_read
    assert list(frame["src"]) == ["你好。", "跑！", "好"]


def test_empty_and_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(CorpusError, match="empty"):
        read_tsv(write(tmp_path, b""), COLUMNS, "zh", "en")
    with pytest.raises(CorpusError, match="cannot open"):
        read_tsv(tmp_path / "missing.tsv", COLUMNS, "zh", "en")


def test_split_keeps_sources_apart_and_all_references(corpus_file):
    frame, report = read_tsv(corpus_file, COLUMNS, "zh", "en", limit=4000)
    frame = clean(frame, report, "zh", "en", max_chars=150)
    splits = split(frame, dev_sources=300, test_sources=300, seed=7)
    train, dev, test = (set(f["src"]) for f in (splits.train, splits.dev, splits.test))
    assert not (train & dev) and not (train & test) and not (dev & test)
    assert len(dev) == 300 and len(test) == 300
    assert len(splits.train) + len(splits.dev) + len(splits.test) == len(frame)
    # every reference of a test source is kept for multi-reference scoring
    sources, refs = references(splits.test)
    all_refs = frame.groupby("src")["tgt"].agg(list)
    assert all(sorted(r) == sorted(all_refs[s]) for s, r in zip(sources, refs, strict=True))
    assert any(len(r) > 1 for r in refs)


def test_split_is_deterministic(corpus_file):
    frame, report = read_tsv(corpus_file, COLUMNS, "zh", "en", limit=2000)
    frame = clean(frame, report, "zh", "en", max_chars=150)
    a = split(frame, 100, 100, seed=1)
    b = split(frame, 100, 100, seed=1)
    c = split(frame, 100, 100, seed=2)
    assert list(a.test["src"]) == list(b.test["src"])
    assert list(a.test["src"]) != list(c.test["src"])


def test_two_aligned_files_are_read_as_pairs(tmp_path):
    (tmp_path / "train.zh").write_text("你好。\n坏\n跑！\n", encoding="utf-8")
    (tmp_path / "train.en").write_bytes(b"Hello.\n\xff\xfe\nRun!\n")
    files = [f"data.src_file={tmp_path / 'train.zh'}", f"data.tgt_file={tmp_path / 'train.en'}"]
    config = load_config("zh-en", overrides=files)
    frame, report = read_corpus(config)
    assert list(frame["src"]) == ["你好。", "跑！"] and list(frame["tgt"]) == ["Hello.", "Run!"]
    assert report.as_dict() == {"lines_read": 3, "kept": 0, "dropped": {"invalid_utf8": 1}}
    assert report.examples["invalid_utf8"] == 2


def test_files_of_different_lengths_are_refused_naming_both(tmp_path):
    (tmp_path / "a.zh").write_text("你好。\n跑！\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("Hello.\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"a\.zh has 2 lines but .*a\.en has 1"):
        read_parallel(tmp_path / "a.zh", tmp_path / "a.en")


def test_tsv_columns_can_be_named_by_the_header(tmp_path):
    path = write(tmp_path, "\ufeffid\tchinese\tenglish\n1\t你好。\tHello.\n2\t跑！\n".encode())
    frame, report = read_tsv(path, {"zh": "chinese", "en": "english"}, "zh", "en")
    assert list(frame["line"]) == [2] and list(frame["tgt"]) == ["Hello."]
    assert report.as_dict()["dropped"] == {"wrong_columns": 1}
    assert report.examples["wrong_columns"] == 3
    with pytest.raises(CorpusError, match="no column named 'cn'"):
        read_tsv(path, {"zh": "cn", "en": "english"}, "zh", "en")


# -- one file per reason, with a known number of bad lines (tests/data/cleaning/make.py) ------

CASES = Path(__file__).parent / "data" / "cleaning"
EXPECTED = json.loads((CASES / "expected.json").read_text(encoding="utf-8"))


def case_config(name: str, *overrides: str) -> dict:
    return load_config(
        "zh-en",
        overrides=[f"data.path={CASES / f'{name}.tsv'}", *overrides],
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_reason_file_gives_its_exact_report(name):
    frame, report = read_and_clean(case_config(name))
    expected = EXPECTED[name]
    assert report.as_dict() == expected["report"]
    assert report.examples == expected["first_line"]
    if "pairs" in expected:  # BOM, CRLF, control characters, full-width: normalised, kept
        assert frame[["src", "tgt"]].values.tolist() == expected["pairs"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_prepare_writes_the_same_report_from_the_command_line(name, tmp_path):
    report_file = tmp_path / "report.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "s2s", "prepare", "--lang", "zh-en"),
            *("--corpus", str(CASES / f"{name}.tsv"), "--report", str(report_file)),
            *("--set", "data.dev_sources=1", "--set", "data.test_sources=1"),
        ],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(report_file.read_text(encoding="utf-8")) == EXPECTED[name]["report"]
    for reason, line in EXPECTED[name]["first_line"].items():
        assert re.search(rf"dropped {reason}\s+\d+\s+\(first at line {line}\)", done.stderr)


@pytest.mark.parametrize("content", [None, b""], ids=["missing", "empty"])
def test_prepare_stops_on_a_missing_or_empty_file_with_a_message(content, tmp_path):
    path = tmp_path / "corpus.tsv"
    if content is not None:
        path.write_bytes(content)
    done = subprocess.run(
        [sys.executable, "-m", "s2s", "prepare", "--lang", "zh-en", "--corpus", str(path)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {path}: ") and "Traceback" not in done.stderr


def subprocess_env() -> dict:
    root = str(Path(__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": root, "PYTHONUTF8": "1"}


# -- chunks -------------------------------------------------------------------------------------


def repeated_slice_config(corpus_file, tmp_path, lines: int, repeat: int) -> dict:
    """A TSV corpus of the first ``lines`` lines, then again the first ``repeat`` of them (so
    that duplicates fall in other chunks than their first occurrence), then two bad lines."""
    head = corpus_file.read_bytes().splitlines(keepends=True)[:lines]
    path = tmp_path / "corpus.tsv"
    path.write_bytes(b"".join(head + head[:repeat] + [b"\xff\n", b"one column\n"]))
    config = load_config("zh-en", overrides=[f"data.path={path}", "data.corpus=null"])
    config["data"]["columns"] = COLUMNS
    return config


def assert_same_cleaning(found, expected) -> None:
    (frame, report), (expected_frame, expected_report) = found, expected
    assert report.as_dict() == expected_report.as_dict()
    assert report.examples == expected_report.examples
    assert frame.values.tolist() == expected_frame.values.tolist()


def test_reading_in_chunks_gives_the_same_pairs_and_report(corpus_file, tmp_path):
    config = repeated_slice_config(corpus_file, tmp_path, 400, 150)
    whole = read_and_clean(config, chunk_lines=10**6)
    assert_same_cleaning(read_and_clean(config, chunk_lines=37), whole)
    assert whole[1].dropped["duplicate"] >= 150


def test_worker_processes_clean_exactly_as_one_process(corpus_file, tmp_path):
    config = repeated_slice_config(corpus_file, tmp_path, 300, 100)
    alone = read_and_clean(config, chunk_lines=29)
    assert_same_cleaning(read_and_clean(config, chunk_lines=29, workers=2), alone)
    assert worker_count(None, 10**6, 29) >= 1 and worker_count(3, 10**6, 29) == 3
    assert worker_count(3, 29, 29) == 1  # one chunk: no processes to start


# -- traditional -> simplified ------------------------------------------------------------------


def test_traditional_characters_become_simplified_only_when_asked():
    text = "我們說漢語，這臺電腦很貴！"
    assert normalize(text, "zh") == text
    assert normalize(text, "zh", "simplified") == "我们说汉语，这台电脑很贵！"
    assert normalize("Ｈｅｌｌｏ 漢", "en", "simplified") == "Hello 漢"  # Chinese text only


def test_the_sentencepiece_rules_convert_like_python(tmp_path):
    from s2s.tokenizer import Tokenizer, train_sentencepiece

    sentences = ["我们说汉语。", "这台电脑很贵！", "你好，世界？"] * 50
    model = train_sentencepiece(
        sentences, tmp_path / "zh", vocab_size=40, lang="zh", script="simplified"
    )
    sp = Tokenizer(model)
    for raw in ["我們說漢語。", "這臺電腦很貴！", "ＡＢＣ，漢"]:
        assert sp.encode([raw]) == sp.encode([normalize(raw, "zh", "simplified")])
    assert sp.decode(sp.encode(["我們說漢語。"])) == ["我们说汉语。"]


def test_an_unknown_script_option_is_refused():
    with pytest.raises(ConfigError, match="chinese_script"):  # by the config, before any work
        case_config("duplicate", "data.chinese_script=cantonese")


# -- property tests: whatever the bytes, nothing raises and the counts add up -------------------

PIECES = ["Hi", "你好", "。", "，", "\t", "\t", " ", "\r", "\ufeff", "\x00", "Ａ", "１", "x" * 40]


def counts_add_up(path: Path, **overrides) -> None:
    config = load_config("zh-en", overrides=[f"data.path={path}", "data.corpus=null"])
    config["data"].update(columns=COLUMNS, max_chars=20, **overrides)
    data = path.read_bytes()
    try:
        frame, report = read_and_clean(config, chunk_lines=3)
    except CorpusError as e:
        assert data == b"" and "empty" in str(e)
        return
    lines = data.count(b"\n") + (not data.endswith(b"\n"))
    assert report.lines_read == lines
    assert report.kept + sum(report.dropped.values()) == report.lines_read == lines
    assert report.kept == len(frame) and set(report.dropped) <= set(DROP_REASONS)
    assert not frame.duplicated(["src", "tgt"]).any()


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes_never_raise_and_counts_add_up(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("bytes") / "corpus.tsv"
    path.write_bytes(data)
    counts_add_up(path)


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(st.lists(st.sampled_from(PIECES), max_size=8).map("".join), max_size=25),
    script=st.sampled_from(["keep", "simplified"]),
)
def test_random_tsv_like_text_never_raises_and_counts_add_up(lines, script, tmp_path_factory):
    path = tmp_path_factory.mktemp("tsv") / "corpus.tsv"
    path.write_text("\n".join(lines), encoding="utf-8")
    counts_add_up(path, chinese_script=script)


# -- the run's data folder: prepare_run_data, load_eval_sets, iter_train, sample_train ----------


def lines_file(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def parallel_config(tmp_path: Path, pairs: list[tuple[str, str]], *overrides: str) -> dict:
    """zh-en on two line-aligned files made from ``pairs``."""
    src = lines_file(tmp_path / "corpus.zh", [p[0] for p in pairs])
    tgt = lines_file(tmp_path / "corpus.en", [p[1] for p in pairs])
    return load_config(
        "zh-en", overrides=[f"data.src_file={src}", f"data.tgt_file={tgt}", *overrides]
    )


def quiet(*_):
    pass


def numbered_pairs(n: int) -> list[tuple[str, str]]:
    return [(f"第{i}句话。", f"Sentence number {i}.") for i in range(n)]


def test_run_data_holds_at_most_a_few_chunks_of_pairs_at_once(tmp_path, monkeypatch):
    """300,000 distinct pairs read 1,000 lines at a time: every frame of pairs the stage makes
    (raw chunks, cleaned chunks) is tracked while alive; never more than 3 chunks' worth."""
    from s2s import data

    n, chunk = 300_000, 1_000
    src, tgt = tmp_path / "big.zh", tmp_path / "big.en"
    src.write_text("".join(f"你好{i}世界。\n" for i in range(n)), encoding="utf-8")
    tgt.write_text("".join(f"hello world {i}.\n" for i in range(n)), encoding="utf-8")
    live, peak = [0], [0]

    def track(frame):
        live[0] += len(frame)
        peak[0] = max(peak[0], live[0])
        weakref.finalize(frame, release, len(frame))
        return frame

    def release(rows: int) -> None:
        live[0] -= rows

    make_frame, clean_chunk = data._frame, data.Cleaner.__call__
    monkeypatch.setattr(data, "_frame", lambda records: track(make_frame(records)))
    monkeypatch.setattr(data.Cleaner, "__call__", lambda self, f: track(clean_chunk(self, f)))
    config = load_config(
        "zh-en",
        overrides=[f"data.src_file={src}", f"data.tgt_file={tgt}", "data.dev_sources=50"],
    )
    summary = prepare_run_data(config, tmp_path / "data", log=quiet, chunk_lines=chunk)
    assert summary["cleaning"]["kept"] == n and summary["train"]["pairs"] == n - 1050
    assert peak[0] > 0 and peak[0] <= 3 * chunk
    assert count_train(tmp_path / "data") == n - 1050


def test_own_dev_and_test_sets_with_two_references_score_like_sacrebleu(tmp_path):
    from sacrebleu.metrics import BLEU, CHRF

    config_pairs = numbered_pairs(50)
    sets = tmp_path / "sets"
    sets.mkdir()
    src = ["他走了。", "我们走吧。", "天哪", "你好！"]
    refs1 = ["He left.", "Let's go.", "My God.", "Hello!"]
    refs2 = ["He is gone.", "Let us go.", "Oh my god.", "Hi!"]
    hyps = ["he left.", "Let's go now.", "my god.", "Hi there!"]
    for name, lines in (("s.zh", src), ("r1.en", refs1), ("r2.en", refs2)):
        lines_file(sets / name, lines)
    spec = {"src": str(sets / "s.zh"), "refs": [str(sets / "r1.en"), str(sets / "r2.en")]}
    config = parallel_config(tmp_path, config_pairs)
    config["data"]["dev"] = {**spec, "lowercase": True}
    config["data"]["test"] = {"news": spec, "test": {**spec, "refs": spec["refs"][:1]}}
    summary = prepare_run_data(config, tmp_path / "data", log=quiet)
    assert summary["train"]["pairs"] == 50  # own sets: the whole corpus is training data
    assert list(summary["sets"]) == ["dev", "news", "test"] and summary["test_set"] == "test"
    loaded = load_eval_sets(tmp_path / "data")
    assert list(loaded) == ["dev", "news", "test"]
    dev, news = loaded["dev"], loaded["news"]
    assert dev.lowercase and not news.lowercase and dev.sources == src
    assert dev.references == [list(r) for r in zip(refs1, refs2, strict=True)]
    assert loaded["test"].references == [[r] for r in refs1]
    for eval_set in (dev, news):
        ours = score(hyps, eval_set.references, "en", lowercase=eval_set.lowercase)
        bleu = BLEU(lowercase=eval_set.lowercase).corpus_score(hyps, [refs1, refs2])
        chrf = CHRF(lowercase=eval_set.lowercase).corpus_score(hyps, [refs1, refs2])
        assert (ours.bleu, ours.chrf) == (bleu.score, chrf.score)
        assert ("case:lc" in ours.bleu_signature) == eval_set.lowercase
    assert (
        score(hyps, dev.references, "en", lowercase=True).bleu
        > score(hyps, dev.references, "en").bleu
    )


def test_overlap_counts_sources_also_in_train_after_normalisation(tmp_path):
    pairs = [("你好。", "Hello."), ("再见。", "Goodbye."), ("ＡＢＣ好", "ABC, fine")]
    config = parallel_config(tmp_path, [*pairs, *numbered_pairs(20)])
    # in train: 你好。 (as is), ABC好 (NFKC of the corpus's full-width ＡＢＣ), 第3句话。
    dev = lines_file(tmp_path / "dev.zh", ["你好。", "ABC好", "没见过。", "第3句话。", "新的。"])
    refs = lines_file(tmp_path / "dev.en", ["Hi.", "ABC", "Never seen.", "Three.", "New."])
    config["data"]["dev"] = {"src": str(dev), "refs": str(refs)}
    config["data"]["test_sources"] = 0
    summary = prepare_run_data(config, tmp_path / "data", log=quiet)
    assert summary["sets"]["dev"]["in_train"] == 3 and list(summary["sets"]) == ["dev"]
    overlap = json.loads((tmp_path / "data" / "overlap.json").read_text(encoding="utf-8"))
    assert overlap == {"dev": {"sources": 5, "in_train": 3}}


def test_held_out_sets_are_deterministic_disjoint_and_keep_all_references(corpus_file, tmp_path):
    config = load_config(
        "zh-en", overrides=["data.limit=4000", "data.dev_sources=300", "data.test_sources=200"]
    )

    def prepared(name: str, seed: int) -> Path:
        config["data"]["seed"] = seed
        prepare_run_data(config, tmp_path / name, corpus_file, log=quiet, chunk_lines=700)
        return tmp_path / name

    a, b, c = prepared("a", 1), prepared("b", 1), prepared("c", 2)
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "test.tsv").read_bytes() != (c / "test.tsv").read_bytes()
    sets = load_eval_sets(a)
    assert [len(sets["dev"]), len(sets["test"])] == [300, 200]
    train = pd.concat(iter_train(a, chunk_lines=999))
    dev, test = set(sets["dev"].sources), set(sets["test"].sources)
    assert not (set(train["src"]) & dev) and not (set(train["src"]) & test) and not dev & test
    frame, _ = read_and_clean(config, corpus_file)
    held_pairs = sum(len(r) for s in sets.values() for r in s.references)
    assert len(train) + held_pairs == len(frame) == count_train(a) + held_pairs
    assert train.values.tolist() == frame[~frame["src"].isin(dev | test)].values.tolist()
    every = frame.groupby("src")["tgt"].agg(list)
    for s in sets.values():
        assert all(r == every[src] for src, r in zip(s.sources, s.references, strict=True))
    assert any(len(r) > 1 for r in sets["test"].references)
    summary = json.loads((a / "summary.json").read_text(encoding="utf-8"))
    assert {info["in_train"] for info in summary["sets"].values()} == {0}


def test_references_with_another_line_count_are_refused_naming_both_files(tmp_path):
    config = parallel_config(tmp_path, numbered_pairs(10))
    src = lines_file(tmp_path / "dev.zh", ["你好。", "再见。"])
    ok = lines_file(tmp_path / "ok.en", ["Hi.", "Bye."])
    short = lines_file(tmp_path / "short.en", ["Hi."])
    config["data"]["dev"] = {"src": str(src), "refs": [str(ok), str(short)]}
    with pytest.raises(
        CorpusError, match=r"data\.dev: .*short\.en has 1 lines but .*dev\.zh has 2"
    ):
        prepare_run_data(config, tmp_path / "data", log=quiet)
    assert not (tmp_path / "data" / "train.tsv").exists()


def test_bad_own_sets_are_named_by_file_line_and_key(tmp_path):
    config = parallel_config(tmp_path, numbered_pairs(10))
    bad = tmp_path / "bad.zh"
    bad.write_bytes("你好。\n".encode() + b"\xff\xfe\n")
    ref = lines_file(tmp_path / "ref.en", ["Hi.", "Bye."])
    config["data"]["dev"] = {"src": str(bad), "refs": [str(ref)]}
    with pytest.raises(CorpusError, match=r"bad\.zh, line 2: not valid UTF-8"):
        prepare_run_data(config, tmp_path / "data", log=quiet)
    config["data"]["dev"] = {"src": str(ref), "ref": [str(ref)]}
    with pytest.raises(CorpusError, match=r"data\.dev: unknown key 'ref'"):
        prepare_run_data(config, tmp_path / "data", log=quiet)
    config["data"]["dev"] = None
    config["data"]["test"] = {"dev": {"src": str(ref), "refs": str(ref)}}
    with pytest.raises(CorpusError, match="cannot name a test set"):
        prepare_run_data(config, tmp_path / "data", log=quiet)


def test_a_finished_data_stage_is_reused_and_a_killed_one_redone(tmp_path, monkeypatch):
    from s2s import data

    config = parallel_config(tmp_path, numbered_pairs(40), "data.dev_sources=5")
    config["data"]["test_sources"] = 5
    folder = tmp_path / "data"
    first = prepare_run_data(config, folder, log=quiet)
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(files) == [
        *("cleaning.json", "dev.tsv", "overlap.json", "summary.json", "test.tsv", "train.tsv")
    ]

    def no_reading(*args, **kwargs):
        raise AssertionError("the corpus was read again")

    monkeypatch.setattr(data, "open_corpus", no_reading)
    messages = []
    assert prepare_run_data(config, folder, log=messages.append) == first
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
    config["data"]["seed"] = 99
    prepare_run_data(config, folder, log=messages.append)
    assert any(m.startswith("warning: data.seed changed") for m in messages)
    monkeypatch.undo()
    (folder / "summary.json").unlink()  # as if killed before the end: everything is redone
    (folder / ".preparing").mkdir()
    (folder / "train.tsv").write_text("half\n", encoding="utf-8")
    config["data"]["seed"] = first["config"]["seed"]
    assert prepare_run_data(config, folder, log=quiet)["train"] == first["train"]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files


def test_train_is_read_in_chunks_and_sampled_uniformly(tmp_path):
    config = parallel_config(tmp_path, numbered_pairs(2000), "data.dev_sources=0")
    config["data"]["test_sources"] = 0
    folder = tmp_path / "data"
    prepare_run_data(config, folder, log=quiet)
    chunks = list(iter_train(folder, chunk_lines=300))
    assert [len(c) for c in chunks] == [300] * 6 + [200]
    assert list(chunks[0].columns) == ["line", "src", "tgt"] and count_train(folder) == 2000
    src, tgt = sample_train(folder, 500, seed=3)
    assert len(src) == len(tgt) == 500 and sample_train(folder, 500, seed=3) == (src, tgt)
    assert sample_train(folder, 500, seed=4) != (src, tgt)
    numbers = [int(t.split()[-1].rstrip(".")) for t in tgt]
    assert all(s == f"第{i}句话。" for s, i in zip(src, numbers, strict=True))
    assert numbers == sorted(set(numbers))  # distinct pairs, in file order
    assert np.histogram(numbers, bins=4, range=(0, 2000))[0].min() > 90  # about 125 each
    hits = np.zeros(2000)  # over many seeds, every pair about equally often
    for seed in range(200):
        hits[[int(t.split()[-1].rstrip(".")) for t in sample_train(folder, 100, seed)[1]]] += 1
    assert hits.sum() == 20_000 and hits.max() < 30 and abs(hits.mean() - 10) < 1e-9
    everything = sample_train(folder, 10**6, seed=0)
    assert len(everything[0]) == 2000


def test_sample_train_holds_the_sample_and_a_chunk_not_the_file(tmp_path):
    """Python memory at peak (tracemalloc) with the 30,000 pairs read in one chunk, then in
    chunks of 1,000: the second holds a chunk and the sample of 100, not the file."""
    import tracemalloc

    config = parallel_config(tmp_path, numbered_pairs(30_000), "data.dev_sources=0")
    config["data"]["test_sources"] = 0
    folder = tmp_path / "data"
    prepare_run_data(config, folder, log=quiet)

    def peak(chunk_lines: int) -> int:
        tracemalloc.start()
        try:
            src, _ = sample_train(folder, 100, seed=0, chunk_lines=chunk_lines)
            assert len(src) == 100
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(1_000) < peak(10**6) / 4


def test_legacy_split_folders_load_as_eval_sets(corpus_file, tmp_path):
    frame, report = read_tsv(corpus_file, COLUMNS, "zh", "en", limit=1500)
    save_splits(split(clean(frame, report, "zh", "en", 150), 50, 60, seed=0), tmp_path)
    sets = load_eval_sets(tmp_path)
    assert [len(sets["dev"]), len(sets["test"])] == [50, 60]
    assert sets["test"].sources == references(load_splits(tmp_path).test)[0]


def test_the_tvsub_recipe_reads_its_corpus_and_dev_set_from_the_corpus_dir(tmp_path, monkeypatch):
    """data/zh-en-tvsub.yaml on a small stand-in for $S2S_CORPUS_DIR/tvsub."""
    folder = tmp_path / "corpora" / "tvsub"
    folder.mkdir(parents=True)
    pairs = [*numbered_pairs(1200), ("好  就是它了", "Okay, this is it.")]
    lines_file(folder / "train.zh", [p[0] for p in pairs])
    lines_file(folder / "train.en", [p[1] for p in pairs])
    lines_file(folder / "dev.zh", ["好  就是它了", "确定要这么做?"])
    lines_file(folder / "dev.en", ["okay, this is it.", "you sure you wanna do this?"])
    monkeypatch.setenv("S2S_CORPUS_DIR", str(tmp_path / "corpora"))
    monkeypatch.chdir(tmp_path)
    config = load_config("zh-en-tvsub", overrides=["data.test_sources=10"])
    assert (config["data"]["src_lang"], config["data"]["tgt_lang"]) == ("zh", "en")
    summary = prepare_run_data(config, tmp_path / "data", log=quiet)
    assert summary["sets"]["dev"]["lowercase"] and summary["sets"]["dev"]["in_train"] == 1
    assert summary["sets"]["dev"]["from"].startswith(str(folder / "dev.zh"))
    assert summary["sets"]["test"]["from"] == "held out from the corpus"
    assert summary["train"]["pairs"] == 1201 - 10 and summary["test_set"] == "test"
    dev = load_eval_sets(tmp_path / "data")["dev"]
    assert dev.sources[0] == "好 就是它了" and dev.references[0] == ["okay, this is it."]


def test_a_failed_data_stage_leaves_no_partial_files(tmp_path):
    config = parallel_config(tmp_path, numbered_pairs(30), "data.dev_sources=20")
    with pytest.raises(CorpusError, match="only 30 distinct sources; cannot hold out 1000 \\+ 20"):
        prepare_run_data(config, tmp_path / "data", log=quiet)
    assert list((tmp_path / "data").iterdir()) == []
