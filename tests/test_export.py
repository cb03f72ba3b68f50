import json
import os
import subprocess
import sys

import pytest

from s2s import data as data_lib
from s2s import runs
from s2s.export import export, next_version
from s2s.runs import load_trained
from s2s.translate import Translator

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
BIN = os.path.dirname(sys.executable)
# saved_model_cli with the SentencePiece ops registered (TF Serving bundles them; plain TF not).
CLI_WITH_TEXT_OPS = (
    "import sys, tensorflow_text; from tensorflow.python.tools.saved_model_cli import main; "
    "sys.argv[0] = 'saved_model_cli'; sys.exit(main())"
)

# Runs in a fresh process that cannot import s2s: only TensorFlow and tensorflow-text.
SERVE = """
import json, sys
sys.path = [p for p in sys.path if p not in ("", ".")]
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
    "translation": [t.decode("utf-8") for t in out["translation"].numpy()],
    "score": out["score"].numpy().tolist(),
    "nbest_shape": list(nbest["translations"].shape),
    "nbest_bad": nbest["translations"].numpy()[0, 0].decode("utf-8", "replace"),
    "nbest_empty": [t.decode("utf-8") for t in nbest["translations"].numpy()[1]],
}))
"""


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


@pytest.mark.slow
def test_the_export_translates_exactly_as_python_does(exported, trained_run, tmp_path):
    paths = runs.RunPaths(trained_run)
    sources, _ = data_lib.references(data_lib.load_splits(paths.data).test)
    texts = [*sources[:40], "", "   ", "好" * 500, "x"]
    (tmp_path / "in.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    served = subprocess.run(
        [sys.executable, "-c", SERVE, str(exported[0]), str(tmp_path / "in.json")],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
        timeout=300,
    )
    assert served.returncode == 0, served.stderr[-3000:]
    result = json.loads(served.stdout.strip().splitlines()[-1])

    config, model, src_tok, tgt_tok = load_trained(trained_run)
    python = Translator.from_config(model, src_tok, tgt_tok, config).translate(texts)
    assert result["translation"] == [h.text for h in python]
    assert result["score"] == pytest.approx([h.score for h in python], rel=1e-4, abs=1e-5)
    assert result["translation"][40:42] == ["", ""] and result["translation"][42]
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
    from s2s.runs import build_model

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
