"""The data folder: train.tsv streamed, dev/test sets held out (or own), overlap, reuse, and
the prepared folder read back in chunks and samples."""

from __future__ import annotations

import json
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from s2s.config import load_config
from s2s.data.errors import CorpusError
from s2s.data.prepared import count_train, iter_train, load_eval_sets, sample_train
from s2s.data.splitting import prepare_data_folder
from s2s.evaluation.metrics import score
from tests.helpers import clean_corpus


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
    """300,000 distinct pairs read 1,000 lines at a time by two worker processes: every frame
    of pairs the stage makes (raw chunks, cleaned chunks) is tracked while alive; never more
    than 4 chunks' worth (three raw chunks in flight, one cleaned chunk being written)."""
    from s2s.data import cleaning, readers

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

    make_frame, deduplicate = readers._frame, cleaning.Cleaner.deduplicate
    monkeypatch.setattr(readers, "_frame", lambda records: track(make_frame(records)))
    monkeypatch.setattr(
        cleaning.Cleaner, "deduplicate", lambda self, *a: track(deduplicate(self, *a))
    )
    config = load_config(
        "zh-en",
        overrides=[f"data.src_file={src}", f"data.tgt_file={tgt}", "data.dev_sources=50"],
    )
    summary = prepare_data_folder(config, tmp_path / "data", log=quiet, chunk_lines=chunk)
    assert summary["cleaning"]["kept"] == n and summary["train"]["pairs"] == n - 1050
    assert peak[0] > 0 and peak[0] <= 4 * chunk
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
    summary = prepare_data_folder(config, tmp_path / "data", log=quiet)
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
    summary = prepare_data_folder(config, tmp_path / "data", log=quiet)
    assert summary["sets"]["dev"]["in_train"] == 3 and list(summary["sets"]) == ["dev"]
    overlap = json.loads((tmp_path / "data" / "overlap.json").read_text(encoding="utf-8"))
    assert overlap == {"dev": {"sources": 5, "in_train": 3}}


def test_held_out_sets_are_deterministic_disjoint_and_keep_all_references(corpus_file, tmp_path):
    config = load_config(
        "zh-en", overrides=["data.limit=4000", "data.dev_sources=300", "data.test_sources=200"]
    )

    def prepared(name: str, seed: int) -> Path:
        config["data"]["seed"] = seed
        prepare_data_folder(config, tmp_path / name, corpus_file, log=quiet, chunk_lines=700)
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
    frame, _ = clean_corpus(config, corpus_file)
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
        prepare_data_folder(config, tmp_path / "data", log=quiet)
    assert not (tmp_path / "data" / "train.tsv").exists()


def test_bad_own_sets_are_named_by_file_line_and_key(tmp_path):
    config = parallel_config(tmp_path, numbered_pairs(10))
    bad = tmp_path / "bad.zh"
    bad.write_bytes("你好。\n".encode() + b"\xff\xfe\n")
    ref = lines_file(tmp_path / "ref.en", ["Hi.", "Bye."])
    config["data"]["dev"] = {"src": str(bad), "refs": [str(ref)]}
    with pytest.raises(CorpusError, match=r"bad\.zh, line 2: not valid UTF-8"):
        prepare_data_folder(config, tmp_path / "data", log=quiet)
    config["data"]["dev"] = {"src": str(ref), "ref": [str(ref)]}
    with pytest.raises(CorpusError, match=r"data\.dev: unknown key 'ref'"):
        prepare_data_folder(config, tmp_path / "data", log=quiet)
    config["data"]["dev"] = None
    config["data"]["test"] = {"dev": {"src": str(ref), "refs": str(ref)}}
    with pytest.raises(CorpusError, match="cannot name a test set"):
        prepare_data_folder(config, tmp_path / "data", log=quiet)


def test_a_finished_data_stage_is_reused_and_a_killed_one_redone(tmp_path, monkeypatch):
    from s2s.data import splitting

    config = parallel_config(tmp_path, numbered_pairs(40), "data.dev_sources=5")
    config["data"]["test_sources"] = 5
    folder = tmp_path / "data"
    first = prepare_data_folder(config, folder, log=quiet)
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(files) == [
        *("cleaning.json", "dev.tsv", "overlap.json", "summary.json", "test.tsv", "train.tsv")
    ]

    def no_reading(*args, **kwargs):
        raise AssertionError("the corpus was read again")

    monkeypatch.setattr(splitting, "open_corpus", no_reading)
    messages = []
    assert prepare_data_folder(config, folder, log=messages.append) == first
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
    config["data"]["seed"] = 99
    prepare_data_folder(config, folder, log=messages.append)
    assert any(m.startswith("warning: data.seed changed") for m in messages)
    monkeypatch.undo()
    (folder / "summary.json").unlink()  # as if killed before the end: everything is redone
    (folder / ".preparing").mkdir()
    (folder / "train.tsv").write_text("half\n", encoding="utf-8")
    config["data"]["seed"] = first["config"]["seed"]
    assert prepare_data_folder(config, folder, log=quiet)["train"] == first["train"]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files


def test_train_is_read_in_chunks_and_sampled_uniformly(tmp_path):
    config = parallel_config(tmp_path, numbered_pairs(2000), "data.dev_sources=0")
    config["data"]["test_sources"] = 0
    folder = tmp_path / "data"
    prepare_data_folder(config, folder, log=quiet)
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
    prepare_data_folder(config, folder, log=quiet)

    def peak(chunk_lines: int) -> int:
        tracemalloc.start()
        try:
            src, _ = sample_train(folder, 100, seed=0, chunk_lines=chunk_lines)
            assert len(src) == 100
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(1_000) < peak(10**6) / 4


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
    summary = prepare_data_folder(config, tmp_path / "data", log=quiet)
    assert summary["sets"]["dev"]["lowercase"] and summary["sets"]["dev"]["in_train"] == 1
    assert summary["sets"]["dev"]["from"].startswith(str(folder / "dev.zh"))
    assert summary["sets"]["test"]["from"] == "held out from the corpus"
    assert summary["train"]["pairs"] == 1201 - 10 and summary["test_set"] == "test"
    dev = load_eval_sets(tmp_path / "data")["dev"]
    assert dev.sources[0] == "好 就是它了" and dev.references[0] == ["okay, this is it."]


def test_a_failed_data_stage_leaves_no_partial_files(tmp_path):
    config = parallel_config(tmp_path, numbered_pairs(30), "data.dev_sources=20")
    with pytest.raises(CorpusError, match="only 30 distinct sources; cannot hold out 1000 \\+ 20"):
        prepare_data_folder(config, tmp_path / "data", log=quiet)
    assert list((tmp_path / "data").iterdir()) == []
