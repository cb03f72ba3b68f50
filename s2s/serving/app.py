"""A translation page for people: type a sentence, see its translation, attention and states.

``python -m s2s demo --run runs/zh-en`` serves one page and the JSON API the page uses:

- ``GET /api/info``: what the server runs and which controls apply;
- ``POST /api/translate``: text (one sentence a line) and search settings in; translations,
  scores, n-best lists, pieces and attention out;
- ``GET /api/automaton``: encoder states of dev sentences projected to 2-D (PCA) with their
  k-means clusters (:mod:`s2s.analysis.hidden_states`), the map the page draws a sentence's
  states on;
- ``POST /api/states``: the encoder states of one sentence on that map.

Over an exported SavedModel (``--export DIR``) it serves translations and n-best lists only:
search is fixed at export time and the export has no attention or encoder signature.

The server reuses :class:`s2s.decoding.translator.Translator` and
:mod:`s2s.analysis.hidden_states` (:mod:`s2s.serving.engines`); the API's shapes are
:mod:`s2s.serving.schemas`. It binds 127.0.0.1 and does one request's model work at a time: it
is for people, not for traffic (serve traffic with the SavedModel and TensorFlow Serving).
"""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from s2s.serving.engines import Unsupported
from s2s.serving.schemas import (
    Automaton,
    StatesRequest,
    StatesResponse,
    TranslateRequest,
    TranslateResponse,
)

PAGE = Path(__file__).with_name("page")
MAX_BODY_BYTES = 64 * 1024  # a request body larger than this is refused before it is parsed


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
