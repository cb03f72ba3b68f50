import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s2s.config import load_config
from s2s.data import (
    DROP_REASONS,
    CorpusError,
    clean,
    normalize,
    read_and_clean,
    read_corpus,
    read_parallel,
    read_tsv,
    references,
    split,
)

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


def test_reading_in_chunks_gives_the_same_pairs_and_report(corpus_file, tmp_path):
    # Repeat a slice so that duplicates fall in other chunks than their first occurrence.
    lines = corpus_file.read_bytes().splitlines(keepends=True)[:400]
    path = tmp_path / "corpus.tsv"
    path.write_bytes(b"".join(lines + lines[:150] + [b"\xff\n", b"one column\n"]))
    config = load_config("zh-en", overrides=[f"data.path={path}", "data.corpus=null"])
    config["data"]["columns"] = COLUMNS
    whole, whole_report = read_and_clean(config, chunk_lines=10**6)
    chunked, chunked_report = read_and_clean(config, chunk_lines=37)
    assert chunked_report.as_dict() == whole_report.as_dict()
    assert chunked_report.examples == whole_report.examples
    assert whole_report.dropped["duplicate"] >= 150
    assert chunked.values.tolist() == whole.values.tolist()


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
    with pytest.raises(CorpusError, match="chinese_script"):
        read_and_clean(case_config("duplicate", "data.chinese_script=cantonese"))


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
