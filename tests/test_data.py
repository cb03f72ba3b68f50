from pathlib import Path

import pytest

from s2s.config import load_config
from s2s.data import (
    CorpusError,
    clean,
    normalize,
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
