"""What a translation is: the best :class:`Hypothesis` of a sentence with its n-best
:class:`Candidate`s. Plain data, no TensorFlow: the Python API hands these out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Candidate(NamedTuple):
    """One translation of a sentence and its score (the length-normalised log-probability);
    a pair, so ``text, score = candidate`` works too."""

    text: str
    score: float


@dataclass
class Hypothesis:
    """The best translation of a sentence, and the ``n`` best as :class:`Candidate`s, best
    first; ``length``: pieces the search generated for the best one, ``</s>`` included."""

    text: str
    score: float
    nbest: list[Candidate] = field(default_factory=list)
    length: int = 0
