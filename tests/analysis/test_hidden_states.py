import numpy as np

from s2s.analysis.hidden_states import StateTrace, kmeans, pca, transitions


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0, 0], [5, 5, 0], [0, 5, 5]], float)
    points = np.concatenate([c + 0.1 * rng.normal(size=(30, 3)) for c in centers])
    labels, found = kmeans(points, k=3, seed=1)
    for block in range(3):  # each true cluster gets one label of its own
        assert len(set(labels[block * 30 : (block + 1) * 30])) == 1
    assert len(set(labels)) == 3
    assert np.allclose(np.sort(found, axis=0), np.sort(centers, axis=0), atol=0.1)


def test_pca_keeps_the_direction_of_largest_variance():
    rng = np.random.default_rng(0)
    points = np.stack([10 * rng.normal(size=200), rng.normal(size=200), np.zeros(200)], 1)
    projected, explained = pca(points, 2)
    assert projected.shape == (200, 2) and explained[0] > 0.95
    assert abs(np.corrcoef(projected[:, 0], points[:, 0])[0, 1]) > 0.99


def test_transitions_count_within_sentences_with_their_driving_pieces():
    trace = StateTrace(
        states=np.zeros((5, 2)),
        pieces=["a", "b", "c", "x", "b"],
        sentence=np.array([0, 0, 0, 1, 1]),
        position=np.array([0, 1, 2, 0, 1]),
    )
    labels = np.array([0, 1, 0, 0, 1])
    counts, symbols = transitions(trace, labels, k=2)
    assert counts.tolist() == [[0, 2], [1, 0]]  # sentence 1 -> 0 is not a transition
    assert symbols[(0, 1)] == ["b"] and symbols[(1, 0)] == ["c"]
