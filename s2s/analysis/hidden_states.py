"""What the recurrent network keeps in its state, read as an automaton.

Collect the encoder's hidden states over sentences, cluster them (k-means), project them to 2-D
(PCA), and count the transitions between clusters with the tokens that drive them: the clusters
play the part of an automaton's states and the pieces that of its input symbols.

Example:
>>> import numpy as np
>>> points = np.concatenate([np.zeros((5, 3)), np.ones((5, 3))])
>>> labels, centers = kmeans(points, k=2, seed=0)
>>> sorted(np.bincount(labels).tolist())
[5, 5]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from s2s.data.pipeline import pad_batch


@dataclass
class StateTrace:
    """Encoder states of a set of sentences, one row per source piece."""

    states: np.ndarray  # [N, 2U] (forward and backward halves)
    pieces: list[str]  # the piece read at each row
    sentence: np.ndarray  # [N] sentence index of each row
    position: np.ndarray  # [N] position of the piece in its sentence


def encoder_states(model, tokenizer, sentences: list[str], batch_size: int = 64) -> StateTrace:
    """Run the encoder over ``sentences`` (already normalised) and keep every real position."""
    return states_of_ids(model, tokenizer, tokenizer.encode(sentences), batch_size)


def states_of_ids(model, tokenizer, ids: list[list[int]], batch_size: int = 64) -> StateTrace:
    """The encoder states of sentences given as piece ids (empty rows contribute nothing)."""
    rows, pieces, sentence, position = [], [], [], []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        memory = model.encode(pad_batch(chunk))[0].numpy()
        for i, seq in enumerate(chunk):
            rows.append(memory[i, : len(seq)])
            pieces.extend(tokenizer.sp.id_to_piece(int(t)) for t in seq)
            sentence.extend([start + i] * len(seq))
            position.extend(range(len(seq)))
    states = np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)
    return StateTrace(states, pieces, np.array(sentence, int), np.array(position, int))


@dataclass
class Projection:
    """A fitted PCA: ``project`` maps new states ``[N, D]`` into the same 2-D picture."""

    mean: np.ndarray  # [D]
    components: np.ndarray  # [dims, D]
    explained: np.ndarray  # [dims] share of the variance each component explains

    def project(self, points: np.ndarray) -> np.ndarray:
        return (points - self.mean) @ self.components.T


def fit_pca(points: np.ndarray, dims: int = 2) -> Projection:
    """The top principal components of ``points [N, D]``."""
    mean = points.mean(axis=0)
    _, singular, vt = np.linalg.svd(points - mean, full_matrices=False)
    variance = singular**2
    return Projection(mean, vt[:dims], variance[:dims] / variance.sum())


def pca(points: np.ndarray, dims: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Project on the top principal components: ``(projected [N, dims], explained ratio)``."""
    projection = fit_pca(points, dims)
    return projection.project(points), projection.explained


def nearest(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """The index of the nearest center of each point: ``[N]``."""
    squared = (points**2).sum(1, keepdims=True)
    return (squared - 2 * points @ centers.T + (centers**2).sum(1)[None, :]).argmin(1)


def kmeans(
    points: np.ndarray, k: int, iterations: int = 50, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding: ``(labels [N], centers [k, D])``."""
    rng = np.random.default_rng(seed)
    centers = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d2 = np.min([((points - c) ** 2).sum(1) for c in centers], axis=0)
        centers.append(points[rng.choice(len(points), p=d2 / d2.sum())])
    centers = np.array(centers)
    labels = np.full(len(points), -1)
    for _ in range(iterations):
        new = nearest(points, centers)
        if np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            if np.any(labels == j):
                centers[j] = points[labels == j].mean(0)
    return labels, centers


def transitions(trace: StateTrace, labels: np.ndarray, k: int, top: int = 3):
    """Counts ``[k, k]`` of cluster -> next cluster within sentences, and for each transition the
    pieces most often read when it happens (the "input symbols" that drive it)."""
    counts = np.zeros((k, k), dtype=int)
    driving: dict[tuple[int, int], Counter] = {}
    same_sentence = trace.sentence[1:] == trace.sentence[:-1]
    for i in np.nonzero(same_sentence)[0]:
        a, b = int(labels[i]), int(labels[i + 1])
        counts[a, b] += 1
        driving.setdefault((a, b), Counter())[trace.pieces[i + 1]] += 1
    symbols = {edge: [p for p, _ in c.most_common(top)] for edge, c in driving.items()}
    return counts, symbols
