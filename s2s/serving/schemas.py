"""The page's JSON API: what requests may hold and what responses hold (pydantic models;
unknown fields are refused, every bound is checked before any model work)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_CHARS = 4000  # text of one request
MAX_LINES = 32  # sentences of one request (one batch)
MAX_BEAM = 32


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
