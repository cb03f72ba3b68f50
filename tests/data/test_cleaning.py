"""Reading and cleaning a corpus: every dropped line counted by reason with its first line,
the same in chunks and in worker processes, whatever the bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s2s.config import ConfigError, load_config
from s2s.data.cleaning import DROP_REASONS, CleaningReport, clean
from s2s.data.errors import CorpusError
from s2s.data.parallel import worker_count
from s2s.data.readers import iter_parallel
from tests.helpers import FIXTURES, clean_corpus, read_frame

COLUMNS = {"en": 0, "zh": 1}


def write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "corpus.tsv"
    path.write_bytes(content)
    return path


def test_bad_lines_are_counted_with_their_line_numbers(tmp_path):
    path = write(
        tmp_path,
        "Hi.\t你好。\tx\n".encode()
        + b"\xff\xfe bad\t\xe4\n"
        + b"only one column\n"
        + "Bye.\t再见。\tx\n".encode(),
    )
    frame, report = read_frame(path, COLUMNS, "zh", "en")
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
    frame, report = read_frame(path, COLUMNS, "zh", "en")
    frame = clean(frame, report, "zh", "en", max_chars=30)
    dropped = {"empty": 1, "too_long": 1, "same_as_source": 1, "no_chinese": 1, "duplicate": 1}
    assert report.as_dict() == {"lines_read": 8, "kept": 3, "dropped": dropped}
    assert frame["tgt"].iloc[-1] == "A1."
    assert report.kept + sum(report.dropped.values()) == report.lines_read
    assert list(frame["src"]) == ["你好。", "跑！", "好"]


def test_empty_and_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(CorpusError, match="empty"):
        read_frame(write(tmp_path, b""), COLUMNS, "zh", "en")
    with pytest.raises(CorpusError, match="cannot open"):
        read_frame(tmp_path / "missing.tsv", COLUMNS, "zh", "en")


def test_two_aligned_files_are_read_as_pairs(tmp_path):
    (tmp_path / "train.zh").write_text("你好。\n坏\n跑！\n", encoding="utf-8")
    (tmp_path / "train.en").write_bytes(b"Hello.\n\xff\xfe\nRun!\n")
    files = [f"data.src_file={tmp_path / 'train.zh'}", f"data.tgt_file={tmp_path / 'train.en'}"]
    config = load_config("zh-en", overrides=files)
    frame, report = clean_corpus(config)
    assert list(frame["src"]) == ["你好。", "跑！"] and list(frame["tgt"]) == ["Hello.", "Run!"]
    assert report.as_dict() == {"lines_read": 3, "kept": 2, "dropped": {"invalid_utf8": 1}}
    assert report.examples["invalid_utf8"] == 2


def test_files_of_different_lengths_are_refused_naming_both(tmp_path):
    (tmp_path / "a.zh").write_text("你好。\n跑！\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("Hello.\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"a\.zh has 2 lines but .*a\.en has 1"):
        list(iter_parallel(tmp_path / "a.zh", tmp_path / "a.en", CleaningReport("x")))


def test_tsv_columns_can_be_named_by_the_header(tmp_path):
    path = write(tmp_path, "\ufeffid\tchinese\tenglish\n1\t你好。\tHello.\n2\t跑！\n".encode())
    frame, report = read_frame(path, {"zh": "chinese", "en": "english"}, "zh", "en")
    assert list(frame["line"]) == [2] and list(frame["tgt"]) == ["Hello."]
    assert report.as_dict()["dropped"] == {"wrong_columns": 1}
    assert report.examples["wrong_columns"] == 3
    with pytest.raises(CorpusError, match="no column named 'cn'"):
        read_frame(path, {"zh": "cn", "en": "english"}, "zh", "en")


CASES = FIXTURES / "cleaning"


EXPECTED = json.loads((CASES / "expected.json").read_text(encoding="utf-8"))


def case_config(name: str, *overrides: str) -> dict:
    return load_config(
        "zh-en",
        overrides=[f"data.path={CASES / f'{name}.tsv'}", *overrides],
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_reason_file_gives_its_exact_report(name):
    frame, report = clean_corpus(case_config(name))
    expected = EXPECTED[name]
    assert report.as_dict() == expected["report"]
    assert report.examples == expected["first_line"]
    if "pairs" in expected:  # BOM, CRLF, control characters, full-width: normalised, kept
        assert frame[["src", "tgt"]].values.tolist() == expected["pairs"]


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
    whole = clean_corpus(config, chunk_lines=10**6)
    assert_same_cleaning(clean_corpus(config, chunk_lines=37), whole)
    assert whole[1].dropped["duplicate"] >= 150


def test_worker_processes_clean_exactly_as_one_process(corpus_file, tmp_path):
    config = repeated_slice_config(corpus_file, tmp_path, 300, 100)
    alone = clean_corpus(config, chunk_lines=29)
    assert_same_cleaning(clean_corpus(config, chunk_lines=29, workers=2), alone)
    assert worker_count(None, 10**6, 29) >= 1 and worker_count(3, 10**6, 29) == 3
    assert worker_count(3, 29, 29) == 1  # one chunk: no processes to start


def test_an_unknown_script_option_is_refused():
    with pytest.raises(ConfigError, match="chinese_script"):  # by the config, before any work
        case_config("duplicate", "data.chinese_script=cantonese")


PIECES = ["Hi", "你好", "。", "，", "\t", "\t", " ", "\r", "\ufeff", "\x00", "Ａ", "１", "x" * 40]


def counts_add_up(path: Path, **overrides) -> None:
    config = load_config("zh-en", overrides=[f"data.path={path}", "data.corpus=null"])
    config["data"].update(columns=COLUMNS, max_chars=20, **overrides)
    data = path.read_bytes()
    try:
        frame, report = clean_corpus(config, chunk_lines=3)
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


def test_the_hash_set_finds_what_was_added_and_keeps_few_runs():
    """Duplicates are found across chunks in a set of sorted runs merged like a binary
    counter: at most ~log2(chunks) runs, each hash merged as often, so keeping n hashes costs
    O(n log n) (re-sorting every hash seen for each chunk cost O(n^2 / chunk))."""
    import numpy as np

    from s2s.data.cleaning import HashSet

    rng = np.random.default_rng(0)
    seen, truth = HashSet(), set()
    for chunk in range(1, 65):
        values = np.unique(rng.integers(0, 2**40, 500, dtype=np.uint64))
        values = values[~seen.contains(values)]
        seen.add(values)
        truth.update(values.tolist())
        assert len(seen.runs) <= chunk.bit_length()
        assert all(np.all(run[1:] > run[:-1]) for run in seen.runs)  # sorted, distinct
    queries = np.concatenate(
        [rng.integers(0, 2**40, 2000, dtype=np.uint64), np.array(sorted(truth)[::7], np.uint64)]
    )
    np.testing.assert_array_equal(seen.contains(queries), [q in truth for q in queries.tolist()])
    assert len(seen) == len(truth)
