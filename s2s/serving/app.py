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


class BodyLimit:
    """ASGI middleware: a request body is read only up to ``limit`` bytes, counted as they
    arrive (a declared ``Content-Length`` over it is refused before anything is read; a chunked
    body is cut off once it passes it): 413. A body that is not UTF-8: 400. The endpoint then
    reads the body from here, so memory per request is bounded by ``limit``."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        size = dict(scope["headers"]).get(b"content-length")
        if size is not None and (not size.isdigit() or int(size) > self.limit):
            message = f"request body of {size.decode('latin-1')} bytes; the limit is {self.limit:,}"
            return await _error(413, message)(scope, receive, send)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > self.limit:
                over = f"request body over the limit of {self.limit:,} bytes"
                return await _error(413, over)(scope, receive, send)
            if not message.get("more_body", False):
                break
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as e:
            bad = f"request body is not UTF-8: {e.reason} at byte {e.start}"
            return await _error(400, bad)(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        return await self.app(scope, replay, send)


def _field(loc) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


def create_app(engine) -> FastAPI:
    """The page and the API over ``engine`` (a :class:`RunEngine` or :class:`SavedModelEngine`)."""
    app = FastAPI(title="s2s demo", description=__doc__)
    info = engine.info()

    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

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


def listen(host: str, port: int):
    """A socket bound to ``host:port`` (0: a free port) and listening: connections wait in its
    backlog until the server starts. Warns when other machines can reach it."""
    import socket
    import sys

    if not is_loopback(host):
        print(
            f"warning: --host {host} serves the page to other machines, with no "
            "authentication: whoever reaches it can use the model (for traffic, serve the "
            "SavedModel with TensorFlow Serving)",
            file=sys.stderr,
            flush=True,
        )
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (``localhost``, 127.0.0.0/8, ::1)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: assume it reaches other machines
        return False


def plotly_bundle() -> Path:
    """plotly.js as the ``plotly`` Python package ships it: the page works offline."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def serve(engine, host: str = "127.0.0.1", port: int = 8000, warm: bool = True) -> None:
    """Run the page until interrupted; ``warm`` traces the default search first. ``port`` 0
    takes a free port; the line printed once the socket is bound gives the real address."""
    import uvicorn

    if warm:
        engine.translate(TranslateRequest(text="warm up"))
    sock = listen(host, port)
    bound = sock.getsockname()[1]
    print(f"s2s demo of {engine.info()['run']} on http://{host}:{bound}/", flush=True)
    config = uvicorn.Config(create_app(engine), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
