import pytest
from conftest import TINY

from s2s.bench import forward_flops, run_bench, table
from s2s.config import load_config


def test_forward_flops_counts_every_layer():
    hp = dict(
        cell="lstm",
        embedding_dim=4,
        encoder_units=3,
        attention_dim=5,
        tgt_vocab_size=7,
        encoder_layers=1,
        decoder_layers=1,
        attention="general",
    )
    b, s, t = 2, 3, 4
    # by hand, multiply-adds x 2, for 6 source and 8 target positions
    encoder = 6 * 2 * 2 * (4 * 3 * (4 + 3))  # two directions, 4 gates, [x; h] -> 3 units
    keys = 6 * 2 * 6 * 6  # memory 6 -> decoder width 6
    decoder = 8 * 2 * 4 * 6 * (4 + 6)
    attention = 8 * 3 * 2 * 6 + 8 * 3 * 2 * 6  # scores and context over 3 source positions
    combine = 8 * 2 * (6 + 6) * 5
    output = 8 * 2 * 5 * 7
    assert forward_flops(hp, b, s, t) == encoder + keys + decoder + attention + combine + output
    feeding = forward_flops({**hp, "input_feeding": True}, b, s, t)
    assert feeding - forward_flops(hp, b, s, t) == 8 * 2 * 4 * 6 * 5


@pytest.mark.slow
def test_bench_reports_every_figure(trained_run, tmp_path, corpus_file):
    config = load_config("zh-en", overrides=TINY)
    results = run_bench(config, tmp_path / "work", trained_run, seconds=3, corpus=corpus_file)
    for key in (
        "matmul_gflops",
        "train_tokens_per_s",
        "train_mfu",
        "input_tokens_per_s",
        "greedy_sent_per_s_batch1",
        "greedy_sent_per_s_batch64",
        "beam5_sent_per_s_batch1",
        "beam5_sent_per_s_batch64",
    ):
        assert results[key]["median"] > 0 and results[key]["min"] <= results[key]["max"], key
    assert 0 < results["train_mfu"]["median"] < 1
    for path in ("savedmodel", "python"):
        assert results[f"{path}_p95_ms"] >= results[f"{path}_p50_ms"] > 0
        assert results[f"{path}_batch32_sent_per_s"]["median"] > 0
    assert results["peak_rss_mb"] > 100
    assert "train_tokens_per_s" in table(results)
