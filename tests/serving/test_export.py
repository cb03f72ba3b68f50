import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s2s.config import run_folder as runs
from s2s.data.prepared import load_eval_sets
from s2s.decoding.translator import Translator
from s2s.models.loading import load_trained
from s2s.serving.export import export, next_version
from s2s.serving.text_graph import normalization_tables, normalize_text
from s2s.text.normalize import normalize

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
BIN = os.path.dirname(sys.executable)
# saved_model_cli with the SentencePiece ops registered (TF Serving bundles them; plain TF not).
CLI_WITH_TEXT_OPS = (
    "import sys, tensorflow_text; from tensorflow.python.tools.saved_model_cli import main; "
    "sys.argv[0] = 'saved_model_cli'; sys.exit(main())"
)

# Text that NFKC changes only as a whole string (combining sequences composed, jamo joined,
# marks reordered), full-width forms, mixed scripts, controls and odd spaces.
AWKWARD = [
    "Cafe\u0301",
    "e\u0301te\u0301",
    "ＡＢＣ１２３",
    "，！？",
    "Tom说 Hello！",
    "\u1100\u1161\u11a8 한국",
    "a\u0323\u0302 q\u0307\u0323",
    "e\u200b\u0301 x\x07y\u3000\u00a0z",
    "（括号）：；… ｶﾀｶﾅ ㈱ ﬁ",
    "，\u0301好\u0301",
]

# Runs in a fresh process that cannot import s2s: only TensorFlow and tensorflow-text. (s2s is
# installed in the environment, so a finder first in line refuses it.)
SERVE = """
import json, sys


class NoS2S:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "s2s" or name.startswith("s2s."):
            raise ImportError("s2s is not available to the serving process")


sys.meta_path.insert(0, NoS2S)
try:
    import s2s
    raise SystemExit("s2s must not be importable here")
except ImportError:
    pass
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the SentencePiece ops
model = tf.saved_model.load(sys.argv[1])
texts = json.loads(open(sys.argv[2], encoding="utf-8").read())
out = model.signatures["serving_default"](text=tf.constant([t.encode("utf-8") for t in texts]))
nbest = model.signatures["translate_nbest"](text=tf.constant([b"\\xff\\xfe bad", b""]))
print(json.dumps({
    "pieces": model.tokenize(tf.constant([t.encode("utf-8") for t in texts])).to_list(),
    "translation": [t.decode("utf-8") for t in out["translation"].numpy()],
    "score": out["score"].numpy().tolist(),
    "nbest_shape": list(nbest["translations"].shape),
    "nbest_bad": nbest["translations"].numpy()[0, 0].decode("utf-8", "replace"),
    "nbest_empty": [t.decode("utf-8") for t in nbest["translations"].numpy()[1]],
}))
"""


def graph_normalize(texts: list[str], lang: str, script: str) -> list[str]:
    """The exported graph's normalisation (:mod:`s2s.serving.text_graph`) on Python text."""
    import tensorflow as tf

    tables = normalization_tables(lang, script)
    out = normalize_text(tf.constant([t.encode("utf-8") for t in texts]), tables)
    return [t.decode("utf-8") for t in out.numpy()]


# Characters whose NFKC depends on their neighbours, or that normalize() treats specially.
TRICKY = st.sampled_from(
    [
        *"e a o u q，！？：；（）,!?漢薴苧\u3000\u00a0\t\n\x07\x85\u200b\ufeff\u00b4",
        *"\u0301\u0302\u0308\u0323\u0327\u0345\u05b0\u0f71\u0f72\u0f80\u3099\u309a",
        *"\u1100\u1161\u11a8\uac00\u0915\u093c\u0b47\u0b3e\uff21\uff76\uff9e\uf900",
        *"\u0378\ufdd0\U0001ccd6\U0001e030\U0001d15e\u212b\u2126\ufb01\u3231",
    ]
)


@pytest.mark.parametrize(("lang", "script"), [("zh", "simplified"), ("en", "keep")])
def test_the_graph_normalises_every_character_as_python_does(lang, script):
    """Also the characters that ICU's newer Unicode knows and this Python's does not."""
    every = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    assert graph_normalize(every, lang, script) == [normalize(c, lang, script) for c in every]


@pytest.mark.parametrize(("lang", "script"), [("zh", "keep"), ("zh", "simplified"), ("en", "keep")])
@settings(max_examples=30, deadline=None)
@given(texts=st.lists(st.text(TRICKY, max_size=12), min_size=1, max_size=200))
def test_the_graph_normalises_whole_strings_as_python_does(lang, script, texts):
    """NFKC composes, reorders and joins across characters; the per-character rules do not."""
    python = [normalize(t, lang, script) for t in texts]
    assert graph_normalize(texts, lang, script) == python


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    return export(trained_run, out), export(trained_run, out)


@pytest.mark.slow
def test_exports_are_versioned_and_carry_their_settings(exported):
    first, second = exported
    assert (first.name, second.name) == ("1", "2") and next_version(first.parent) == 3
    meta = json.loads((first / "assets" / "meta.json").read_text(encoding="utf-8"))
    assert meta["search"]["beam_size"] == 3 and meta["src_lang"] == "zh"
    assert (first / "assets.extra" / "tf_serving_warmup_requests").stat().st_size > 0
    assert not list(first.parent.glob(".*partial"))


def warmup_requests(export_dir) -> dict[str, list[str]]:
    """Signature name -> the texts of its request in the export's TF Serving warm-up file."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = export_dir / "assets.extra" / "tf_serving_warmup_requests"
    requests = {}
    for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        texts = tf.make_ndarray(request.inputs["text"]).tolist()
        requests[request.model_spec.signature_name] = [t.decode("utf-8") for t in texts]
    return requests


@pytest.mark.slow
def test_the_warmup_requests_are_the_runs_own_dev_sources(exported, trained_run):
    sources = load_eval_sets(runs.RunPaths(trained_run).data)["dev"].sources
    requests = warmup_requests(exported[0])
    assert sorted(requests) == ["serving_default", "translate_nbest"]
    for texts in requests.values():
        assert len(texts) > 1 and texts == sources[: len(texts)]


@pytest.mark.slow
@pytest.mark.parametrize("search", ["compacting", "compiled"])
def test_the_export_translates_exactly_as_python_does(exported, trained_run, tmp_path, search):
    """In a fresh process, what Python's translator gives; ``compiled``: an export whose search
    is the XLA-compiled loop (``search.jit_compile``) against Python's default search."""
    export_dir = exported[0]
    if search == "compiled":
        export_dir = export(trained_run, tmp_path / "exports", jit_compile=True)
        meta = json.loads((export_dir / "assets" / "meta.json").read_text(encoding="utf-8"))
        assert meta["search"]["jit_compile"] is True
    paths = runs.RunPaths(trained_run)
    sources = load_eval_sets(paths.data)["test"].sources
    texts = [*sources[:40], "", "   ", "好" * 500, "x", *AWKWARD]
    (tmp_path / "in.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    served = subprocess.run(
        [sys.executable, "-c", SERVE, str(export_dir), str(tmp_path / "in.json")],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
        timeout=300,
    )
    assert served.returncode == 0, served.stderr[-3000:]
    result = json.loads(served.stdout.strip().splitlines()[-1])

    config, model, src_tok, tgt_tok = load_trained(trained_run)
    lang, script = config["data"]["src_lang"], config["data"]["chinese_script"]
    normalized = [normalize(t, lang, script) for t in texts]
    assert result["pieces"] == src_tok.encode(normalized)  # the source pieces, before any search
    python = Translator.from_config(model, src_tok, tgt_tok, config).translate(texts)
    assert result["translation"] == [h.text for h in python]
    assert result["score"] == pytest.approx([h.score for h in python], rel=1e-4, abs=1e-5)
    assert result["translation"][40:42] == ["", ""] and result["score"][40:42] == [0.0, 0.0]
    assert result["score"][42] < 0.0  # the over-long line was searched (truncated), not skipped
    assert result["nbest_shape"] == [2, 3] and result["nbest_empty"] == ["", "", ""]


@pytest.mark.slow
def test_saved_model_cli_lists_the_signatures_and_translates(exported):
    cli = os.path.join(BIN, "saved_model_cli")
    shown = subprocess.run(
        [cli, "show", "--dir", str(exported[0]), "--all"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    for name in ("serving_default", "translate_nbest", "translation", "score", "translations"):
        assert name in shown.stdout
    run = ["run", "--dir", str(exported[0]), "--tag_set", "serve"]
    run += ["--signature_def", "serving_default", "--input_exprs", 'text=["你好。"]']
    ran = subprocess.run(
        [sys.executable, "-c", CLI_WITH_TEXT_OPS, *run],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "translation" in ran.stdout


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["gru", "mgu", "rnn"])
def test_every_cell_type_exports_and_translates_like_python(trained_run, tmp_path, cell):
    """A run folder with an untrained model of another cell: export, load, compare."""
    import shutil

    import tensorflow as tf

    from s2s.config import read_yaml, save_config
    from s2s.models.loading import build_model

    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("checkpoints", "model.keras"))
    paths = runs.RunPaths(run)
    config = read_yaml(paths.config)
    config["model"].update(cell=cell, encoder_layers=2, input_feeding=cell == "mgu")
    save_config(config, paths.config)
    _, _, src_tok, tgt_tok = load_trained(trained_run)
    build_model(config, src_tok, tgt_tok).save(paths.model)

    served = tf.saved_model.load(str(export(run, tmp_path / "exports")))
    texts = ["我们走吧。", "", "汤姆不想去那里，因为他很累。"]
    out = served.signatures["serving_default"](text=tf.constant(texts))
    _, model, src_tok, tgt_tok = load_trained(run)
    python = Translator.from_config(model, src_tok, tgt_tok, config).translate(texts)
    assert [t.decode("utf-8") for t in out["translation"].numpy()] == [h.text for h in python]


@pytest.mark.slow
def test_an_export_in_the_training_precision_translates_like_python(trained_run, tmp_path):
    """``search.precision: train`` of a bfloat16 run: the exported graph computes in bfloat16
    (weights stored in it) and answers as the Python path of the same setting does."""
    import shutil

    import tensorflow as tf

    from s2s.config import read_yaml, save_config

    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("checkpoints"))
    paths = runs.RunPaths(run)
    config = read_yaml(paths.config)
    config["train"]["precision"] = "mixed_bfloat16"
    config["search"]["precision"] = "train"
    save_config(config, paths.config)

    served = tf.saved_model.load(str(export(run, tmp_path / "exports")))
    texts = ["我们走吧。", "", "汤姆不想去那里，因为他很累。", "他一小时前走了。"]
    out = served.signatures["serving_default"](text=tf.constant(texts))
    config, model, src_tok, tgt_tok = load_trained(run)
    assert model.decoder.compute_dtype == "bfloat16"
    python = Translator.from_config(model, src_tok, tgt_tok, config).translate(texts)
    assert [t.decode("utf-8") for t in out["translation"].numpy()] == [h.text for h in python]
    assert out["score"].numpy().tolist() == pytest.approx([h.score for h in python], abs=1e-5)


def test_a_failed_export_leaves_no_partial_version(trained_run, tmp_path, monkeypatch):
    """A version folder is written as ``.N.partial`` and renamed when complete; an export that
    fails (here: the disk fills while the warm-up requests are written) removes it."""
    from s2s.serving import export as export_module

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_module, "write_warmup", disk_full)
    with pytest.raises(OSError, match="No space left"):
        export(trained_run, tmp_path / "exports")
    assert list((tmp_path / "exports").iterdir()) == []
