import pytest

from s2s.analysis.bench import bench_sources, compute_dtype, run_bench, table
from s2s.analysis.flops import decode_flops, forward_flops
from s2s.config import load_config
from s2s.decoding.translator import Translator
from s2s.models.loading import load_trained
from s2s.serving.bench import serving_figures
from tests.helpers import TINY


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


def test_greedy_decoding_costs_what_teacher_forcing_the_output_costs():
    hp = dict(
        cell="gru",
        embedding_dim=4,
        encoder_units=3,
        attention_dim=5,
        tgt_vocab_size=7,
        encoder_layers=2,
        decoder_layers=1,
        attention="additive",
    )
    assert decode_flops(hp, [3], [4], beam=1) == forward_flops(hp, 1, 3, 4)
    # K hypotheses share one encoding: K times the decoder, once the encoder.
    beam5 = decode_flops(hp, [3], [4], beam=5)
    assert beam5 == forward_flops(hp, 1, 3, 4) + 4 * (
        forward_flops(hp, 1, 3, 4) - forward_flops(hp, 1, 3, 0)
    )
    assert decode_flops(hp, [3, 6], [4, 2], beam=5) == beam5 + decode_flops(hp, [6], [2], beam=5)


@pytest.mark.slow
def test_bench_reports_every_figure(trained_run, tmp_path, corpus_file):
    config = load_config("zh-en", overrides=TINY)
    results = run_bench(
        config, tmp_path / "work", trained_run, seconds=3, corpus=corpus_file, max_sentences=48
    )
    for key in (
        "matmul_gflops",
        "train_tokens_per_s",
        "train_mfu",
        "input_tokens_per_s",
        "greedy_sent_per_s_batch1",
        "greedy_sent_per_s_batch64",
        "beam5_sent_per_s_batch1",
        "beam5_sent_per_s_batch16",
        "beam5_sent_per_s_batch64",
    ):
        assert results[key]["median"] > 0 and results[key]["min"] <= results[key]["max"], key
    for group in ("beam5_batch1", "beam5_batch64", "beam5_batch64_src5", "beam5_batch64_src60"):
        figures = results[group]
        assert figures["sent_per_s"]["median"] > 0 and figures["out_pieces"] >= 1, group
        assert figures["flops_per_piece"] > 0 and 0 < figures["mfu"]["median"] < 1, group
    # Sources cut to ~5 and ~60 pieces (the tokenizer may re-split a cut by a piece or two),
    # then to what the model reads (the tiny config's largest bucket holds 31).
    assert 3 <= results["beam5_batch64_src5"]["src_pieces"] <= 7
    assert 25 <= results["beam5_batch64_src60"]["src_pieces"] <= 31
    assert 0 < results["train_mfu"]["median"] < 1
    # Each MFU is its speed times the FLOPs counted, over the matmul peak measured.
    peak = results["matmul_gflops"]["median"] * 1e9
    tokens = results["train_tokens_per_s"]["median"] * results["train_flops_per_token"]
    assert results["train_mfu"]["median"] == pytest.approx(tokens / peak)
    for group in ("beam5_batch1", "beam5_batch64"):
        figures = results[group]
        flops = figures["flops_per_piece"] * figures["out_pieces"] * figures["sent_per_s"]["median"]
        assert figures["mfu"]["median"] == pytest.approx(flops / peak)
    config, model, src_tok, tgt_tok = load_trained(trained_run)
    translator = Translator.from_config(model, src_tok, tgt_tok, config)
    sources = bench_sources(tmp_path / "work")[:48]
    results.update(serving_figures(trained_run, translator, sources))
    for path in ("savedmodel", "python"):
        assert results[f"{path}_p95_ms"] >= results[f"{path}_p50_ms"] > 0
        assert results[f"{path}_batch32_sent_per_s"]["median"] > 0
    assert results["peak_rss_mb"] > 100
    assert "train_tokens_per_s" in table(results)


def test_compute_dtype_is_the_layers_not_the_top_models(tmp_path):
    """A run trained in bfloat16 and loaded from model.keras computes in float32: its layers are
    rebuilt under the global policy. The bench must report that, not the top model's policy."""
    import keras

    from s2s.models import precision as distribute
    from s2s.models.seq2seq import Seq2Seq

    hp = load_config("zh-en", overrides=TINY)["model"]
    with distribute.precision("mixed_bfloat16"):
        model = Seq2Seq.from_config_dict(hp, 30, 30)
        model.build_from_config({})
    assert compute_dtype(model) == "bfloat16"
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    assert loaded.dtype_policy.name == "mixed_bfloat16"
    assert compute_dtype(loaded) == "float32"
