"""A translation page for people: type a sentence, see its translation, attention and states.

``python -m s2s demo --run runs/zh-en`` serves one page and the JSON API the page uses:

- ``GET /api/info``: what the server runs and which controls apply;
- ``POST /api/translate``: text (one sentence a line) and search settings in; translations,
  scores, n-best lists, pieces and attention out;
- ``GET /api/automaton``: encoder states of dev sentences projected to 2-D (PCA) with their
  k-means clusters (:mod:`s2s.states`), the map the page draws a sentence's states on;
- ``POST /api/states``: the encoder states of one sentence on that map.

Over an exported SavedModel (``--export DIR``) it serves translations and n-best lists only:
search is fixed at export time and the export has no attention or encoder signature.

The server reuses :class:`s2s.translate.Translator` and :mod:`s2s.states`. It binds 127.0.0.1 and
does one request's model work at a time: it is for people, not for traffic (serve traffic with
the SavedModel and TensorFlow Serving).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, model_validator

from s2s import states as states_lib
from s2s.pipeline import pad_batch
from s2s.translate import Sampling, Translator
from s2s.vocab import EOS_ID

PAGE = Path(__file__).with_name("demo_page")
MAX_BODY_BYTES = 64 * 1024  # a request body larger than this is refused before it is parsed
MAX_CHARS = 4000  # text of one request
MAX_LINES = 32  # sentences of one request (one batch)
MAX_BEAM = 32
TRANSLATORS_KEPT = 8  # traced searches kept, one per search setting (a new one traces, ~1-3 s)


# --- the API's shapes ----------------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SamplingSettings(Strict):
    """Sample instead of searching: the same model can say a sentence differently."""

    temperature: float = Field(1.0, gt=0, le=10)
    top_k: int = Field(0, ge=0, le=100_000, description="0: all tokens")
    seed: int = Field(0, ge=0, le=2**31 - 1)


class TranslateRequest(Strict):
    text: str = Field(max_length=MAX_CHARS, description="one sentence a line")
    beam_size: int | None = Field(None, ge=1, le=MAX_BEAM, description="1: greedy; null: run's")
    alpha: float | None = Field(None, ge=0, le=5, description="length penalty; null: run's")
    nbest: int = Field(1, ge=1, le=MAX_BEAM, description="hypotheses returned per line")
    sampling: SamplingSettings | None = None
    attention: bool = True

    @model_validator(mode="after")
    def _nbest_fits(self):
        if self.text.count("\n") >= MAX_LINES:
            raise ValueError(f"text has more than {MAX_LINES} lines")
        if self.sampling is not None and self.nbest > 1:
            raise ValueError("nbest must be 1 when sampling (one sample a line)")
        if self.beam_size is not None and self.nbest > self.beam_size:
            raise ValueError(f"nbest {self.nbest} needs a beam_size of at least {self.nbest}")
        return self


class Hypothesis(Strict):
    text: str
    score: float
    pieces: list[str] = Field(description="output pieces, </s> included")
    attention: list[list[float]] | None = Field(
        None, description="[len(pieces), len(source_pieces)]"
    )


class Line(Strict):
    source: str
    source_pieces: list[str]
    truncated: bool = Field(description="longer than the model reads: its first pieces used")
    translation: str
    score: float
    hypotheses: list[Hypothesis] = Field(description="best first; empty for an empty line")


class TranslateResponse(Strict):
    lines: list[Line]
    settings: dict
    milliseconds: float


class StatesRequest(Strict):
    text: str = Field(max_length=MAX_CHARS, description="the first non-empty line is used")


class StatesResponse(Strict):
    pieces: list[str]
    points: list[list[float]] = Field(description="[len(pieces), 2] on the automaton's map")
    clusters: list[int]


class Automaton(Strict):
    points: list[list[float]]
    clusters: list[int]
    pieces: list[str]
    explained: list[float] = Field(description="variance share of the two axes")
    k: int
    sentences: int


# --- what the server runs ----------------------------------------------------------------


class RunEngine:
    """A trained run: every control, attention, and the encoder's states."""

    kind = "run"

    def __init__(self, run_dir: str | Path, clusters: int = 8, sentences: int = 300):
        from s2s.runs import RunPaths, load_trained

        self.run_dir = Path(run_dir)
        self.config, self.model, self.src_tok, self.tgt_tok = load_trained(run_dir)
        self.paths = RunPaths(self.run_dir)
        self.clusters, self.sentences = clusters, sentences
        self.lock = threading.Lock()  # one request's model work at a time
        self._translators: OrderedDict[tuple, Translator] = OrderedDict()
        self._automaton: tuple[Automaton, states_lib.Projection, np.ndarray] | None = None

    def info(self) -> dict:
        search = self.config["search"]
        return {
            "kind": self.kind,
            "run": str(self.run_dir),
            "src_lang": self.config["data"]["src_lang"],
            "tgt_lang": self.config["data"]["tgt_lang"],
            "beam_size": search["beam_size"],
            "alpha": search["alpha"],
            "max_beam": MAX_BEAM,
            "max_src_pieces": self.translator(TranslateRequest(text="")).max_src_len,
            "features": {"search": True, "sampling": True, "attention": True, "states": True},
        }

    def translator(self, request: TranslateRequest) -> Translator:
        """The traced search for these settings (kept: a new setting costs one tracing)."""
        settings = self.settings(request)
        s = request.sampling
        key = (settings["beam_size"], settings["alpha"], s and tuple(s.model_dump().values()))
        if key not in self._translators:
            self._translators[key] = Translator.from_config(
                self.model,
                self.src_tok,
                self.tgt_tok,
                self.config,
                sampling=Sampling(s.temperature, s.top_k, s.seed) if s else None,
                beam_size=settings["beam_size"],
                alpha=settings["alpha"],
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
                out = translator.search_ids(pad_batch([ids[i] for i in rows]), request.attention)
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
        from s2s.data import load_eval_sets

        sources = load_eval_sets(self.paths.data)["dev"].sources[: self.sentences]
        translator = self.translator(TranslateRequest(text=""))
        ids = [seq[: translator.max_src_len] for seq in translator.source_ids(sources)]
        trace = states_lib.states_of_ids(self.model, self.src_tok, [s for s in ids if s])
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
            trace = states_lib.states_of_ids(self.model, self.src_tok, ids)
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
            "run": str(self.export_dir),
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


# --- the app -------------------------------------------------------------------------------


def _field(loc) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


def create_app(engine) -> FastAPI:
    """The page and the API over ``engine`` (a :class:`RunEngine` or :class:`SavedModelEngine`)."""
    app = FastAPI(title="s2s demo", description=__doc__)
    info = engine.info()

    @app.middleware("http")
    async def check_body(request: Request, call_next):
        """Refuse a body over the limit before reading it, and one that is not UTF-8."""
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY_BYTES):
            return _error(413, f"request body of {size} bytes; the limit is {MAX_BODY_BYTES:,}")
        if request.method == "POST":
            body = await request.body()  # read once; the endpoint reads the cached copy
            if len(body) > MAX_BODY_BYTES:
                return _error(413, f"request body over the limit of {MAX_BODY_BYTES:,} bytes")
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as e:
                return _error(400, f"request body is not UTF-8: {e.reason} at byte {e.start}")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = [f"{_field(e['loc'])}: {e['msg']}" for e in exc.errors()]
        return _error(422, "; ".join(problems))

    @app.exception_handler(Unsupported)
    async def unsupported(request: Request, exc: Unsupported):
        return _error(422, str(exc))

    @app.get("/api/info")
    def api_info() -> dict:
        return info

    @app.post("/api/translate")
    def api_translate(request: TranslateRequest) -> TranslateResponse:
        start = time.perf_counter()
        lines = engine.translate(request)
        return TranslateResponse(
            lines=lines,
            settings=engine.settings(request),
            milliseconds=round(1000 * (time.perf_counter() - start), 2),
        )

    @app.get("/api/automaton")
    def api_automaton() -> Automaton:
        if not info["features"]["states"]:
            raise Unsupported("a SavedModel has no encoder states to show")
        return engine.automaton()

    @app.post("/api/states")
    def api_states(request: StatesRequest) -> StatesResponse:
        if not info["features"]["states"]:
            raise Unsupported("a SavedModel has no encoder states to show")
        return engine.states(request)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(PAGE / "index.html")

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js():
        return FileResponse(plotly_bundle(), media_type="text/javascript")

    app.mount("/static", StaticFiles(directory=PAGE), name="static")
    return app


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def plotly_bundle() -> Path:
    """plotly.js as the ``plotly`` Python package ships it: the page works offline."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def serve(engine, host: str = "127.0.0.1", port: int = 8000, warm: bool = True) -> None:
    """Run the page until interrupted; ``warm`` traces the default search first."""
    import uvicorn

    if warm:
        engine.translate(TranslateRequest(text="warm up"))
    print(f"s2s demo of {engine.info()['run']} on http://{host}:{port}/", flush=True)
    uvicorn.run(create_app(engine), host=host, port=port, log_level="warning")
