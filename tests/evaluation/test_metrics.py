import random

import pytest
from sacrebleu.metrics import BLEU

from s2s.evaluation.lengths import format_length_ratios, length_ratios
from s2s.evaluation.metrics import bleu_tokenizer, reference_streams, score
from s2s.evaluation.significance import paired_bootstrap


def test_tokenizer_follows_the_target_language():
    assert bleu_tokenizer("zh") == "zh"
    assert bleu_tokenizer("en") == "13a"
    assert bleu_tokenizer("zh", override="char") == "char"


def test_multi_reference_scoring_matches_sacrebleu_with_a_variable_number_of_refs():
    hyps = ["The dog bit the man.", "It was not surprising.", "He left."]
    refs = [
        ["The dog bit the man.", "The dog had bitten the man."],
        ["No one was surprised."],
        ["He went away.", "He left.", "He is gone."],
    ]
    result = score(hyps, refs, "en")
    streams = reference_streams(refs)
    assert streams[2] == [None, None, "He is gone."]
    expected = BLEU(tokenize="13a").corpus_score(hyps, streams)
    assert result.bleu == expected.score
    assert "nrefs:var" in result.bleu_signature and "tok:13a" in result.bleu_signature
    assert score(hyps, [[r[0]] for r in refs], "en").bleu < result.bleu


def test_chinese_targets_use_the_zh_tokenizer():
    result = score(["我们走吧。"], [["我们走吧。"]], "zh")
    assert "tok:zh" in result.bleu_signature
    assert result.bleu == pytest.approx(100.0)


def test_ter_is_reported_with_its_signature():
    perfect = score(["He left."], [["He left."]], "en")
    assert perfect.ter == 0.0 and "TER" not in perfect.ter_signature
    assert "nrefs:1" in perfect.ter_signature
    assert score(["He went."], [["He left."]], "en").ter > 0


def test_chinese_ter_counts_character_edits():
    """One character wrong in eight is a TER of 12.5; unnormalised, sacreBLEU's Asian support
    does nothing and each sentence was one TER word (50: one sentence of two wrong)."""
    result = score(["我喜欢猫", "他是学生"], [["我喜欢狗"], ["他是学生"]], "zh")
    assert result.ter == pytest.approx(12.5)  # 1 edit in 8 characters
    assert "norm:yes" in result.ter_signature and "asian:yes" in result.ter_signature
    assert score(["He went."], [["He left."]], "en").ter_signature.count("norm:no") == 1


def test_compare_ranks_runs_with_paired_bootstrap():
    rng = random.Random(0)
    refs = [[f"sentence number {i} is about the {w}."] for i, w in enumerate(WORDS * 10)]
    good = [r[0] for r in refs]
    bad = [" ".join(rng.sample(r[0].split(), 3)) for r in refs]
    table = paired_bootstrap([("good", good), ("bad", bad)], refs, "en", samples=200)
    assert list(table["system"]) == ["good", "bad"]
    assert table["BLEU"][0] == 100.0 and table["BLEU"][1] < 50
    assert table["BLEU p"][1] < 0.05
    assert {"chrF", "TER", "BLEU 95% CI"} <= set(table.columns)


WORDS = ["cat", "dog", "tree", "house", "river", "train", "book", "city", "sea", "sky"]


def test_scores_keep_full_precision_and_reports_round_them():
    """Dev BLEU rounded to 2 decimals decided the best checkpoint: 20.004 and 20.001 tied."""
    from sacrebleu.metrics import BLEU

    hyps, refs = ["the cat sat on a mat", "a dog ran"], [["the cat sat on the mat"], ["a dog ran"]]
    scores = score(hyps, refs, "en")
    raw = BLEU().corpus_score(hyps, [[r[0] for r in refs]]).score
    assert scores.bleu == raw and round(raw, 2) != raw
    assert scores.as_dict()["bleu"] == round(raw, 2)
    assert f"BLEU = {raw:.2f}" in scores.summary()


def test_lowercase_scoring_says_case_lc_and_matches_sacrebleu():
    """TVsub's dev references are lower-cased: scored with lowercase=True, a hypothesis in
    mixed case is not penalised for its capitals."""
    from sacrebleu.metrics import CHRF, TER

    hyps = ["Okay, this is it.", "You sure you wanna do this?", "Hello, Mrs. Ross."]
    refs = [["okay, this is it."], ["you sure you want to do this?"], ["hello, Mrs. Ross."]]
    streams = reference_streams(refs)
    lower = score(hyps, refs, "en", lowercase=True)
    mixed = score(hyps, refs, "en")
    assert "case:lc" in lower.bleu_signature and "case:lc" in lower.chrf_signature
    assert "case:mixed" in mixed.bleu_signature and "case:mixed" in mixed.chrf_signature
    assert lower.bleu == BLEU(lowercase=True).corpus_score(hyps, streams).score
    assert mixed.bleu == BLEU().corpus_score(hyps, streams).score
    assert lower.chrf == CHRF(lowercase=True).corpus_score(hyps, streams).score
    assert mixed.chrf == CHRF().corpus_score(hyps, streams).score
    # the same as sacreBLEU's case-sensitive scores of lower-cased text
    lowered = [h.lower() for h in hyps], [[r.lower() for r in s] for s in streams]
    assert lower.bleu == BLEU().corpus_score(*lowered).score
    assert lower.bleu > mixed.bleu
    # sacreBLEU's TER ignores case either way
    assert lower.ter == mixed.ter == TER().corpus_score(hyps, streams).score
    table = paired_bootstrap([("a", hyps), ("b", hyps)], refs, "en", samples=10, lowercase=True)
    assert table["BLEU"][0] == round(lower.bleu, 2)


def test_length_ratios_bucket_by_source_length_and_add_up_to_bleus_lengths():
    sources = [
        "Stop!",
        "I am going to the bank now.",
        "Why?",
        "Tom and I sat on a bench in the park and talked.",
    ]
    hyps = ["停！", "我要去银行。", "为什么？", "我坐在公园的长椅上。"]
    refs = [
        ["住手！", "停下来！"],  # 3 and 4 tokens: 3 is closest to the hypothesis' 2
        ["我现在要去银行。"],
        ["为什么？"],
        ["我和汤姆在公园的长椅上坐着聊天。"],
    ]
    rows = length_ratios(sources, hyps, refs, "en", "zh", starts=(1, 5, 10))
    assert [r["source_tokens"] for r in rows] == ["1-4", "5-9", "10+"]
    assert [r["sentences"] for r in rows] == [2, 1, 1]
    assert rows[0]["hyp_len"] == 2 + 4 and rows[0]["ref_len"] == 3 + 4
    assert rows[2]["ratio"] == round(10 / 16, 3)
    bleu = BLEU(tokenize="zh").corpus_score(hyps, reference_streams(refs))
    assert sum(r["hyp_len"] for r in rows) == bleu.sys_len
    assert sum(r["ref_len"] for r in rows) == bleu.ref_len
    line = format_length_ratios(rows)
    assert line.startswith("output/reference length by source tokens: 1-4 0.857 (2)")


def test_length_ratios_count_chinese_sources_by_character_and_check_lengths():
    rows = length_ratios(
        ["我们走吧。", "你好"], ["Let's go.", "Hi."], [["Let's go."], ["Hello."]], "zh", "en"
    )
    assert [(r["source_tokens"], r["sentences"]) for r in rows] == [("1-4", 1), ("5-9", 1)]
    with pytest.raises(ValueError, match="2 sources, 1 hypotheses"):
        length_ratios(["a", "b"], ["x"], [["x"], ["y"]], "en", "en")
