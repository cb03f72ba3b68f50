"""Export a trained run as a self-contained SavedModel that translates strings to strings.

``exports/<pair>/<version>/`` is the versioned layout TensorFlow Serving watches. The graph
holds :func:`s2s.text.normalize.normalize` as TensorFlow ops (:mod:`s2s.serving.text_graph`),
the SentencePiece models (tensorflow-text's ``SentencepieceOp``, the protos embedded), the
encoder and the beam search of :mod:`s2s.decoding.search`, and nothing else: no custom ops, no
Python callbacks. Besides core TensorFlow it uses two old tensorflow-text ops,
``SentencepieceOp`` and ``NormalizeUTF8``, which the tensorflow-text bundled with TF Serving
has too.

Signatures:
- ``serving_default``: ``text`` ``string [N]`` -> ``translation`` ``string [N]``, ``score``
  ``float32 [N]`` (length-normalised log-probability);
- ``translate_nbest``: ``text`` -> ``translations`` ``string [N, K]``, ``scores`` ``[N, K]``.

The loaded object also has ``tokenize``: ``text`` -> source piece ids ``int32 [N, (pieces)]``
(ragged, not truncated), what the search reads; for checks, not a serving signature.

Defined answers: an empty (or all-space) string gives ``""`` with score 0; a sentence longer
than the model's maximum is truncated to its first pieces (as ``python -m s2s translate`` does);
bytes that are not UTF-8 are read as U+FFFD, never an error.

Built with ``tf.saved_model.save`` on a ``tf.Module`` rather than ``keras.export.ExportArchive``:
the endpoints are plain ``tf.function``s over text, and attributes of a ``tf.Module`` are
tracked by construction (tokenizer resources included), so no separate ``track()`` is needed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from s2s.config.run_folder import RunPaths
from s2s.data.errors import CorpusError
from s2s.data.prepared import load_eval_sets
from s2s.decoding.ensemble import load_ensemble
from s2s.decoding.fusion import ShallowFusion
from s2s.decoding.search import beam_search, greedy_search
from s2s.models.loading import fusion_model
from s2s.serving.text_graph import normalization_tables, normalize_text
from s2s.text.vocab import EOS_ID, PAD_ID, UNK_ID

TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")
WARMUP_SOURCES = 8  # dev sources in each TF Serving warm-up request


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
        src_lang: str = "",
        script: str = "keep",
        lm=None,
        lm_weight: float = 0.0,
        jit_compile: bool = False,
    ):
        super().__init__(name="translation")
        self.src_tables = normalization_tables(src_lang, script)
        # The graph reads TensorFlow variables of its own, named by each weight's unique path, in
        # place of the Keras model's (keras.StatelessScope maps one to the other while tracing):
        # through Keras's own tracking the saved functions would read copies that a TF1-style
        # loader (TF Serving, saved_model_cli run) never restores, and Keras names the TF
        # variables it creates by their short names, which several share. The models are kept
        # out of the object graph.
        self.__dict__["model"], self.__dict__["lm"] = model, lm
        self.weights = _named_copies(model.variables)
        if lm is not None:  # shallow fusion: the language model lives in the same graph
            self.lm_weights = _named_copies(lm.variables, prefix="lm/")
        self.lm_weight = lm_weight
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
        self.jit_compile = jit_compile

    def _pieces(self, text):
        """Source piece ids ``[N, (pieces)]``: normalised as in Python, then SentencePiece."""
        return self.src_sp.tokenize(normalize_text(text, self.src_tables))

    def _source_ids(self, text):
        """Pieces ``[N, S]`` (S >= 1) and which rows are empty; empty rows hold one ``</s>``."""
        pieces = self._pieces(text)[:, : self.max_src_len]
        empty = tf.equal(pieces.row_lengths(), 0)
        ids = pieces.to_tensor(default_value=PAD_ID)
        ids = tf.pad(ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(ids)[1])]])
        first_column = tf.equal(tf.range(tf.shape(ids)[1]), 0)[None, :]
        return tf.where(tf.logical_and(empty[:, None], first_column), EOS_ID, ids), empty

    @property
    def search_model(self):
        """The model search reads: fused with the language model when there is one."""
        if self.lm is None:
            return self.model
        return ShallowFusion(self.model, self.lm, self.lm_weight)

    def _detokenize(self, ids):
        """``[M, T]`` ids -> ``[M]`` strings, dropping ``</s>`` and what follows it, and padding."""
        ended = tf.cumsum(tf.cast(tf.equal(ids, EOS_ID), tf.int32), axis=1) > 0
        keep = tf.logical_and(
            tf.logical_not(ended), tf.logical_or(ids > EOS_ID, tf.equal(ids, UNK_ID))
        )
        return self.tgt_sp.detokenize(tf.ragged.boolean_mask(ids, keep))

    def _state(self) -> keras.StatelessScope:
        """Inside it, the Keras models read this module's variables (see ``__init__``)."""
        mapping = list(zip(self.model.variables, self.weights, strict=True))
        if self.lm is not None:
            mapping += list(zip(self.lm.variables, self.lm_weights, strict=True))
        return keras.StatelessScope(state_mapping=mapping)

    def _search(self, text):
        """``(translations [N, K], scores [N, K])``, best first."""
        with self._state():
            return self._search_text(text)

    def _search_text(self, text):
        src, empty = self._source_ids(text)
        if self.beam_size == 1:
            ids, scores = greedy_search(
                self.search_model,
                src,
                self.alpha,
                self.max_len_a,
                self.max_len_b,
                jit_compile=self.jit_compile,
            )
            ids, scores = ids[:, None, :], scores[:, None]
        else:
            ids, scores = beam_search(
                self.search_model,
                src,
                self.beam_size,
                self.alpha,
                self.max_len_a,
                self.max_len_b,
                stopping=self.stopping,
                jit_compile=self.jit_compile,
            )
        shape = tf.shape(ids)
        texts = tf.reshape(self._detokenize(tf.reshape(ids, [-1, shape[2]])), shape[:2])
        texts = tf.where(empty[:, None], "", texts)
        return texts, tf.where(empty[:, None], 0.0, scores)

    @tf.function(input_signature=[TEXT_SPEC])
    def tokenize(self, text):
        """The source pieces the search reads, untruncated: for checks against Python."""
        return self._pieces(text)

    @tf.function(input_signature=[TEXT_SPEC])
    def translate(self, text):
        texts, scores = self._search(text)
        return {"translation": texts[:, 0], "score": scores[:, 0]}

    @tf.function(input_signature=[TEXT_SPEC])
    def translate_nbest(self, text):
        texts, scores = self._search(text)
        return {"translations": texts, "scores": scores}


def _named_copies(variables, prefix: str = "") -> list[tf.Variable]:
    """A ``tf.Variable`` holding each Keras variable's value, named by its unique path.

    A SavedModel loaded the TF1 way (TensorFlow Serving, ``saved_model_cli run``) looks
    variables up by name, and duplicate names then fail with "Could not find variable".
    """
    seen: set[str] = set()
    copies = []
    for i, variable in enumerate(variables):
        path = prefix + variable.path
        name = path if path not in seen else f"{path}_{i}"
        seen.add(name)
        copies.append(tf.Variable(variable.value, trainable=False, name=name))
    return copies


def next_version(folder: Path) -> int:
    """One more than the highest integer-named version in ``folder`` (TF Serving's layout)."""
    versions = [int(p.name) for p in folder.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export(
    run_dir: str | Path,
    out_dir: str | Path,
    beam_size: int | None = None,
    lm_run: str | None = None,
    lm_weight: float | None = None,
    precision: str | None = None,
    jit_compile: bool | None = None,
    others: Sequence[str | Path] = (),
    checkpoints: int = 0,
) -> Path:
    """Export the run's best model to ``out_dir/<next version>/``; returns that folder.
    ``others`` and ``checkpoints`` make it an ensemble (see
    :func:`s2s.decoding.ensemble.load_ensemble`): one graph holding every member.
    ``lm_run``/``lm_weight`` (default: the run's ``search`` settings) put a language model for
    shallow fusion into the graph; ``precision`` (default: the run's ``search.precision``) is
    the one the graph computes in; ``jit_compile`` (default: the run's ``search.jit_compile``)
    compiles the search with XLA, which TF Serving runs only when started with
    ``--xla_cpu_compilation_enabled=true``."""
    config, model, src_tok, tgt_tok = load_ensemble(run_dir, others, checkpoints, precision)
    given = {
        "beam_size": beam_size,
        "lm_run": lm_run,
        "lm_weight": lm_weight,
        "jit_compile": jit_compile,
    }
    search = {**config["search"], **{k: v for k, v in given.items() if v is not None}}
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
        src_lang=config["data"]["src_lang"],
        script=config["data"].get("chinese_script", "keep"),  # as Translator.from_config
        lm=fusion_model(search, tgt_tok),
        lm_weight=search.get("lm_weight", 0.0),
        jit_compile=search.get("jit_compile", False),
    )
    out_dir = Path(out_dir)
    target = out_dir / str(next_version(out_dir))
    meta = {
        "run": str(Path(run_dir).resolve()),
        "ensemble": {
            "runs": [str(Path(r).resolve()) for r in others],
            "checkpoints": checkpoints,
        },
        "src_lang": config["data"]["src_lang"],
        "tgt_lang": config["data"]["tgt_lang"],
        "search": {
            k: search.get(k)
            for k in (
                "beam_size",
                "alpha",
                "max_len_a",
                "max_len_b",
                "stopping",
                "lm_run",
                "lm_weight",
                "jit_compile",
            )
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
        try:
            tf.saved_model.save(module, str(tmp_target), signatures=signatures)
            if sentences := warmup_sentences(run_dir):  # TF Serving loads without them too
                write_warmup(tmp_target, sentences)
        except BaseException:
            shutil.rmtree(tmp_target, ignore_errors=True)  # nothing half-written is left
            raise
    tmp_target.rename(target)  # TF Serving must never see a half-written version
    return target


def warmup_sentences(run_dir: str | Path, count: int = WARMUP_SOURCES) -> list[str]:
    """The first ``count`` sources of the run's dev set (none if its data was deleted).

    So TF Serving warms up on the run's own source language, whatever the pair. Only the dev
    set is read (:func:`s2s.data.prepared.load_eval_sets`): ``train.tsv`` can be large.
    """
    try:
        return load_eval_sets(RunPaths(Path(run_dir)).data)["dev"].sources[:count]
    except (CorpusError, FileNotFoundError, KeyError):
        return []


def write_warmup(export_dir: Path, sentences: list[str]) -> Path:
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
