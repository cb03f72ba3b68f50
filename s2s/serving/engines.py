"""What the page serves: a trained run (:class:`RunEngine`: every control, attention and the
encoder's states) or an exported SavedModel (:class:`SavedModelEngine`: translations and n-best
lists, search as exported)."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from s2s.analysis import hidden_states as states_lib
from s2s.config.run_folder import RunPaths
from s2s.data.pipeline import pad_batch
from s2s.data.prepared import load_eval_sets
from s2s.decoding.ensemble import Ensemble, load_ensemble
from s2s.decoding.translator import Sampling, Translator
from s2s.serving.schemas import (
    MAX_BEAM,
    Automaton,
    Hypothesis,
    Line,
    StatesRequest,
    StatesResponse,
    TranslateRequest,
)
from s2s.text.vocab import EOS_ID

TRANSLATORS_KEPT = 8  # traced searches kept, one per search setting (a new one traces, ~1-3 s)


class RunEngine:
    """A trained run (or an ensemble led by it: ``others``, ``checkpoints``): every control,
    attention, and the encoder's states (of the first member)."""

    kind = "run"

    def __init__(
        self,
        run_dir: str | Path,
        clusters: int = 8,
        sentences: int = 300,
        others: Sequence[str | Path] = (),
        checkpoints: int = 0,
    ):
        self.run_dir = Path(run_dir)
        self.config, self.model, self.src_tok, self.tgt_tok = load_ensemble(
            run_dir, others, checkpoints
        )
        self.encoder_model = (
            self.model.members[0] if isinstance(self.model, Ensemble) else self.model
        )
        self.paths = RunPaths(self.run_dir)
        self.clusters, self.sentences = clusters, sentences
        self.lock = threading.Lock()  # one request's model work at a time
        self._translators: OrderedDict[tuple, Translator] = OrderedDict()
        self._automaton: tuple[Automaton, states_lib.Projection, np.ndarray] | None = None

    def info(self) -> dict:
        search = self.config["search"]
        return {
            "kind": self.kind,
            "run": self.run_dir.name,  # the name, not a path of the server's file system
            "src_lang": self.config["data"]["src_lang"],
            "tgt_lang": self.config["data"]["tgt_lang"],
            "beam_size": search["beam_size"],
            "alpha": search["alpha"],
            "max_beam": MAX_BEAM,
            "max_src_pieces": self.translator(TranslateRequest(text="")).max_src_len,
            "features": {"search": True, "sampling": True, "attention": True, "states": True},
        }

    def translator(self, request: TranslateRequest) -> Translator:
        """The traced search for this beam size (or sampling with this top-k), kept: alpha,
        temperature and seed are inputs of the trace, so only a new beam size or top-k costs
        a tracing (1-3 s)."""
        settings = self.settings(request)
        s = request.sampling
        if s is not None and s.top_k > self.tgt_tok.vocab_size:
            raise Unsupported(
                f"sampling.top_k: {s.top_k:,} is more than the model's target vocabulary of "
                f"{self.tgt_tok.vocab_size:,} pieces"
            )
        key = (settings["beam_size"], s and s.top_k)
        if key not in self._translators:
            self._translators[key] = Translator.from_config(
                self.model,
                self.src_tok,
                self.tgt_tok,
                self.config,
                sampling=Sampling(s.temperature, s.top_k, s.seed) if s else None,
                beam_size=settings["beam_size"],
            )
            if len(self._translators) > TRANSLATORS_KEPT:
                self._translators.popitem(last=False)
        self._translators.move_to_end(key)
        return self._translators[key]

    def translate(self, request: TranslateRequest) -> list[Line]:
        sources = [line.rstrip("\r") for line in request.text.split("\n")]
        with self.lock:
            translator = self.translator(request)
            full = translator.source_ids(sources)
            ids = [seq[: translator.max_src_len] for seq in full]
            lines = [self._empty_line(s) for s in sources]
            rows = [i for i, seq in enumerate(ids) if seq]
            if rows:
                s = request.sampling
                out = translator.search_ids(
                    pad_batch([ids[i] for i in rows]),
                    request.attention,
                    alpha=self.settings(request)["alpha"],
                    temperature=s and s.temperature,
                    seed=s and s.seed,
                )
                for r, i in enumerate(rows):
                    hyps = [
                        self._hypothesis(out, r, j, len(ids[i]))
                        for j in range(min(request.nbest, out[0].shape[1]))
                    ]
                    lines[i] = Line(
                        source=sources[i],
                        source_pieces=self._pieces(self.src_tok, ids[i]),
                        truncated=len(full[i]) > len(ids[i]),
                        translation=hyps[0].text,
                        score=hyps[0].score,
                        hypotheses=hyps,
                    )
        return lines

    def settings(self, request: TranslateRequest) -> dict:
        search = self.config["search"]
        return {
            "beam_size": 1 if request.sampling else request.beam_size or search["beam_size"],
            "alpha": search["alpha"] if request.alpha is None else request.alpha,
            "sampling": request.sampling.model_dump() if request.sampling else None,
        }

    @staticmethod
    def _empty_line(source: str) -> Line:
        return Line(
            source=source,
            source_pieces=[],
            truncated=False,
            translation="",
            score=0.0,
            hypotheses=[],
        )

    @staticmethod
    def _pieces(tokenizer, ids) -> list[str]:
        return [tokenizer.sp.id_to_piece(int(i)) for i in ids]

    def _hypothesis(self, out, row: int, j: int, src_len: int) -> Hypothesis:
        """Hypothesis ``j`` of batch row ``row`` of ``(ids, scores[, attention])``."""
        ids = [int(i) for i in out[0][row, j]]
        ids = ids[: ids.index(EOS_ID) + 1] if EOS_ID in ids else ids
        attention = None
        if len(out) > 2:
            attention = np.round(out[2][row, j, : len(ids), :src_len], 4).tolist()
        return Hypothesis(
            text=self.tgt_tok.decode([ids])[0],
            score=float(out[1][row, j]),
            pieces=self._pieces(self.tgt_tok, ids),
            attention=attention,
        )

    def automaton(self) -> Automaton:
        """Dev sentences' encoder states, clustered and projected (computed once)."""
        with self.lock:
            if self._automaton is None:
                self._automaton = self._fit_automaton()
        return self._automaton[0]

    def _fit_automaton(self):
        sources = load_eval_sets(self.paths.data)["dev"].sources[: self.sentences]
        translator = self.translator(TranslateRequest(text=""))
        ids = [seq[: translator.max_src_len] for seq in translator.source_ids(sources)]
        trace = states_lib.states_of_ids(self.encoder_model, self.src_tok, [s for s in ids if s])
        k = min(self.clusters, len(trace.states))
        labels, centers = states_lib.kmeans(trace.states, k=k, seed=0)
        projection = states_lib.fit_pca(trace.states)
        automaton = Automaton(
            points=np.round(projection.project(trace.states), 4).tolist(),
            clusters=labels.tolist(),
            pieces=trace.pieces,
            explained=projection.explained.tolist(),
            k=k,
            sentences=int(trace.sentence.max()) + 1 if len(trace.sentence) else 0,
        )
        return automaton, projection, centers

    def states(self, request: StatesRequest) -> StatesResponse:
        self.automaton()
        _, projection, centers = self._automaton
        line = next((s for s in request.text.split("\n") if s.strip()), "")
        with self.lock:
            translator = self.translator(TranslateRequest(text=""))
            ids = [seq[: translator.max_src_len] for seq in translator.source_ids([line])]
            trace = states_lib.states_of_ids(self.encoder_model, self.src_tok, ids)
        if not trace.pieces:
            return StatesResponse(pieces=[], points=[], clusters=[])
        return StatesResponse(
            pieces=trace.pieces,
            points=np.round(projection.project(trace.states), 4).tolist(),
            clusters=states_lib.nearest(trace.states, centers).tolist(),
        )


class SavedModelEngine:
    """An exported SavedModel: translations and n-best lists, search as exported."""

    kind = "savedmodel"

    def __init__(self, export_dir: str | Path):
        import tensorflow as tf

        self.export_dir = Path(export_dir)
        self.meta = json.loads((self.export_dir / "assets" / "meta.json").read_text("utf-8"))
        self.nbest_fn = tf.saved_model.load(str(self.export_dir)).signatures["translate_nbest"]
        self.lock = threading.Lock()

    def info(self) -> dict:
        search = self.meta["search"]
        return {
            "kind": self.kind,
            "run": self.export_dir.parent.name or self.export_dir.name,
            "src_lang": self.meta["src_lang"],
            "tgt_lang": self.meta["tgt_lang"],
            "beam_size": search["beam_size"],
            "alpha": search["alpha"],
            "max_beam": search["beam_size"],
            "max_src_pieces": self.meta["max_src_pieces"],
            "features": {"search": False, "sampling": False, "attention": False, "states": False},
        }

    def settings(self, request: TranslateRequest) -> dict:
        search = self.meta["search"]
        return {"beam_size": search["beam_size"], "alpha": search["alpha"], "sampling": None}

    def translate(self, request: TranslateRequest) -> list[Line]:
        import tensorflow as tf

        search = self.meta["search"]
        if request.sampling or request.beam_size not in (None, search["beam_size"]):
            raise Unsupported(f"this SavedModel searches with beam {search['beam_size']} only")
        if request.alpha not in (None, search["alpha"]):
            raise Unsupported(f"this SavedModel searches with alpha {search['alpha']} only")
        if request.nbest > search["beam_size"]:
            raise Unsupported(f"nbest {request.nbest} > the export's beam {search['beam_size']}")
        sources = [line.rstrip("\r") for line in request.text.split("\n")]
        with self.lock:
            out = self.nbest_fn(text=tf.constant(sources))
        texts, scores = out["translations"].numpy(), out["scores"].numpy()
        lines = []
        for i, source in enumerate(sources):
            hyps = [
                Hypothesis(text=texts[i, j].decode("utf-8"), score=float(scores[i, j]), pieces=[])
                for j in range(request.nbest)
            ]
            hyps = hyps if source.strip() else []
            best = hyps[0] if hyps else Hypothesis(text="", score=0.0, pieces=[])
            lines.append(
                Line(
                    source=source,
                    source_pieces=[],
                    truncated=False,
                    translation=best.text,
                    score=best.score,
                    hypotheses=hyps,
                )
            )
        return lines


class Unsupported(Exception):
    """A request this engine cannot answer (a 422 naming why)."""
