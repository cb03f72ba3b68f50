"""Export a trained run as a self-contained SavedModel that translates strings to strings.

``exports/<pair>/<version>/`` is the versioned layout TensorFlow Serving watches. The graph holds
the SentencePiece models (tensorflow-text's ``SentencepieceOp``, the protos embedded; their
normalisation rules are part of the protos, see :mod:`s2s.tokenizer`), the encoder and the
beam search of :mod:`s2s.search`, and nothing else: no custom ops, no Python callbacks.

Signatures:
- ``serving_default``: ``text`` ``string [N]`` -> ``translation`` ``string [N]``, ``score``
  ``float32 [N]`` (length-normalised log-probability);
- ``translate_nbest``: ``text`` -> ``translations`` ``string [N, K]``, ``scores`` ``[N, K]``.

Defined answers: an empty (or all-space) string gives ``""`` with score 0; a sentence longer
than the model's maximum is truncated to its first pieces (as ``python -m s2s translate`` does);
bytes that are not UTF-8 are read by SentencePiece as unknown characters, never an error.

Built with ``tf.saved_model.save`` on a ``tf.Module`` rather than ``keras.export.ExportArchive``:
the endpoints are plain ``tf.function``s over text, and attributes of a ``tf.Module`` are
tracked by construction (tokenizer resources included), so no separate ``track()`` is needed.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import tensorflow as tf
import tensorflow_text as tf_text

from s2s.search import beam_search, greedy_search
from s2s.vocab import EOS_ID, PAD_ID, UNK_ID

TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")
WARMUP_SENTENCES = ("", "你好。", "我们明天早上去公园散步吧，好吗？")


class Translation(tf.Module):
    """Text in, text out around a trained :class:`s2s.model.Seq2Seq`."""

    def __init__(
        self,
        model,
        src_proto: bytes,
        tgt_proto: bytes,
        beam_size: int,
        alpha: float,
        max_len_a: float,
        max_len_b: int,
        max_src_len: int,
        stopping: str = "exact",
    ):
        super().__init__(name="translation")
        # Save the TensorFlow variables themselves, not the Keras model: through Keras's own
        # tracking the saved functions would read copies that a TF1-style loader (TF Serving,
        # saved_model_cli run) never restores. The model is kept out of the object graph.
        _give_variables_unique_names(model)
        self.weights = [v.value for v in model.variables]
        self.__dict__["model"] = model
        # Distinct names matter: the op's kernel shares its model by node name, and two unnamed
        # tokenizers would read the same model once the SavedModel is loaded.
        self.src_sp = tf_text.SentencepieceTokenizer(
            model=src_proto, out_type=tf.int32, name="src_sentencepiece"
        )
        self.tgt_sp = tf_text.SentencepieceTokenizer(
            model=tgt_proto, out_type=tf.int32, name="tgt_sentencepiece"
        )
        self.beam_size, self.alpha, self.stopping = beam_size, alpha, stopping
        self.max_len_a, self.max_len_b, self.max_src_len = max_len_a, max_len_b, max_src_len

    def _source_ids(self, text):
        """Pieces ``[N, S]`` (S >= 1) and which rows are empty; empty rows hold one ``</s>``."""
        pieces = self.src_sp.tokenize(text)[:, : self.max_src_len]
        empty = tf.equal(pieces.row_lengths(), 0)
        ids = pieces.to_tensor(default_value=PAD_ID)
        ids = tf.pad(ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(ids)[1])]])
        first_column = tf.equal(tf.range(tf.shape(ids)[1]), 0)[None, :]
        return tf.where(tf.logical_and(empty[:, None], first_column), EOS_ID, ids), empty

    def _detokenize(self, ids):
        """``[M, T]`` ids -> ``[M]`` strings, dropping ``</s>`` and what follows it, and padding."""
        ended = tf.cumsum(tf.cast(tf.equal(ids, EOS_ID), tf.int32), axis=1) > 0
        keep = tf.logical_and(
            tf.logical_not(ended), tf.logical_or(ids > EOS_ID, tf.equal(ids, UNK_ID))
        )
        return self.tgt_sp.detokenize(tf.ragged.boolean_mask(ids, keep))

    def _search(self, text):
        """``(translations [N, K], scores [N, K])``, best first."""
        src, empty = self._source_ids(text)
        if self.beam_size == 1:
            ids, scores = greedy_search(self.model, src, self.alpha, self.max_len_a, self.max_len_b)
            ids, scores = ids[:, None, :], scores[:, None]
        else:
            ids, scores = beam_search(
                self.model,
                src,
                self.beam_size,
                self.alpha,
                self.max_len_a,
                self.max_len_b,
                stopping=self.stopping,
            )
        shape = tf.shape(ids)
        texts = tf.reshape(self._detokenize(tf.reshape(ids, [-1, shape[2]])), shape[:2])
        texts = tf.where(empty[:, None], "", texts)
        return texts, tf.where(empty[:, None], 0.0, scores)

    @tf.function(input_signature=[TEXT_SPEC])
    def translate(self, text):
        texts, scores = self._search(text)
        return {"translation": texts[:, 0], "score": scores[:, 0]}

    @tf.function(input_signature=[TEXT_SPEC])
    def translate_nbest(self, text):
        texts, scores = self._search(text)
        return {"translations": texts, "scores": scores}


def _give_variables_unique_names(model) -> None:
    """Back every Keras variable with a ``tf.Variable`` named by its unique path.

    Keras names the TensorFlow variables it creates by their short name (``kernel``) inside
    whatever name scope was active, so several can share a name. A SavedModel loaded the TF1 way
    (TensorFlow Serving, ``saved_model_cli run``) looks variables up by that name, and
    duplicates then fail with "Could not find variable".
    """
    seen: set[str] = set()
    for i, variable in enumerate(model.variables):
        name = variable.path if variable.path not in seen else f"{variable.path}_{i}"
        seen.add(name)
        variable._value = tf.Variable(variable.value, trainable=variable.trainable, name=name)


def next_version(folder: Path) -> int:
    """One more than the highest integer-named version in ``folder`` (TF Serving's layout)."""
    versions = [int(p.name) for p in folder.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export(run_dir: str | Path, out_dir: str | Path, beam_size: int | None = None) -> Path:
    """Export the run's best model to ``out_dir/<next version>/``; returns that folder."""
    from s2s.runs import load_trained

    config, model, src_tok, tgt_tok = load_trained(run_dir)
    search = {**config["search"], **({"beam_size": beam_size} if beam_size else {})}
    module = Translation(
        model,
        src_tok.serialized(),
        tgt_tok.serialized(),
        beam_size=search["beam_size"],
        alpha=search["alpha"],
        max_len_a=search["max_len_a"],
        max_len_b=search["max_len_b"],
        max_src_len=config["train"]["bucket_boundaries"][-1] - 1,
        stopping=search["stopping"],
    )
    out_dir = Path(out_dir)
    target = out_dir / str(next_version(out_dir))
    meta = {
        "run": str(Path(run_dir).resolve()),
        "src_lang": config["data"]["src_lang"],
        "tgt_lang": config["data"]["tgt_lang"],
        "search": {
            k: search[k] for k in ("beam_size", "alpha", "max_len_a", "max_len_b", "stopping")
        },
        "max_src_pieces": module.max_src_len,
        "signatures": {
            "serving_default": {"inputs": ["text"], "outputs": ["translation", "score"]},
            "translate_nbest": {"inputs": ["text"], "outputs": ["translations", "scores"]},
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        meta_path = Path(tmp) / "meta.json"
        meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        module.meta = tf.saved_model.Asset(str(meta_path))
        signatures = {
            "serving_default": module.translate.get_concrete_function(),
            "translate_nbest": module.translate_nbest.get_concrete_function(),
        }
        tmp_target = out_dir / f".{target.name}.partial"
        tf.saved_model.save(module, str(tmp_target), signatures=signatures)
    write_warmup(tmp_target, WARMUP_SENTENCES)
    tmp_target.rename(target)  # TF Serving must never see a half-written version
    return target


def write_warmup(export_dir: Path, sentences: tuple[str, ...]) -> Path:
    """``assets.extra/tf_serving_warmup_requests``: requests TF Serving replays at load time."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    path = Path(export_dir) / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature in ("serving_default", "translate_nbest"):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(signature_name=signature),
                inputs={"text": tf.make_tensor_proto(list(sentences), dtype=tf.string)},
            )
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path
