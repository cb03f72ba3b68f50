import numpy as np
import pytest
import tensorflow as tf

from s2s.decoding import loop, search, strategies
from s2s.decoding.search import beam_search, greedy_search, sample_search
from s2s.decoding.strategies import NEG_INF, length_penalty
from s2s.text.vocab import BOS_ID, EOS_ID
from tests.helpers import random_batch, random_model

A, B = 4, 5


class MarkovModel:
    """A hand-built step function: P(next token) depends only on the previous token."""

    def __init__(self, table: dict[int, dict[int, float]], vocab: int = 6):
        probs = np.full((vocab, vocab), 1e-6)
        for prev, nxt in table.items():
            for tok, p in nxt.items():
                probs[prev, tok] = p
        self.log_table = tf.constant(np.log(probs / probs.sum(1, keepdims=True)), tf.float32)

    def encode(self, src):
        batch = tf.shape(src)[0]
        mask = tf.not_equal(src, 0)
        memory = tf.zeros([batch, tf.shape(src)[1], 1])
        return memory, memory, mask, [[tf.zeros([batch, 1])]]

    def decode_step(self, tokens, states, memory, keys, mask, beam=1):
        weights = tf.zeros([tf.shape(tokens)[0], tf.shape(mask)[1]], tf.float32)
        return tf.gather(self.log_table, tokens), states, weights


# Greedy takes A (0.55) then </s> (0.4): 0.22. Beam 2 finds B (0.45) then </s> (0.95): 0.43.
GARDEN_PATH = {
    BOS_ID: {A: 0.55, B: 0.45},
    A: {EOS_ID: 0.4, A: 0.3, B: 0.3},
    B: {EOS_ID: 0.95, A: 0.05},
}
SRC = np.array([[7, 7, 7]], np.int32)


def test_beam_two_finds_what_greedy_misses():
    model = MarkovModel(GARDEN_PATH)
    greedy_ids, greedy_score = greedy_search(model, SRC, alpha=0.0)
    beam_ids, beam_scores = beam_search(model, SRC, beam_size=2, alpha=0.0)
    assert greedy_ids.numpy()[0].tolist() == [A, EOS_ID]
    assert beam_ids.numpy()[0, 0, :2].tolist() == [B, EOS_ID]
    np.testing.assert_allclose(beam_scores[0, 0], np.log(0.45 * 0.95), rtol=1e-4)
    np.testing.assert_allclose(greedy_score[0], np.log(0.55 * 0.4), rtol=1e-4)
    assert beam_scores[0, 0] > beam_scores[0, 1]


def test_finished_hypotheses_never_grow_and_length_limit_forces_the_end():
    # Neither branch ever wants to stop: only the length limit ends them.
    model = MarkovModel(
        {BOS_ID: {A: 0.9, B: 0.1}, A: {A: 0.99, EOS_ID: 0.01}, B: {B: 0.99, EOS_ID: 0.01}}
    )
    ids, scores = beam_search(model, SRC, beam_size=2, alpha=0.0, max_len_a=1.0, max_len_b=2)
    ids = ids.numpy()[0]
    # limit: 1.0 * 3 + 2 = 5 tokens before </s>
    assert ids[0].tolist() == [A, A, A, A, A, EOS_ID]
    expected = np.log(0.9) + 4 * np.log(0.99) + np.log(0.01)
    np.testing.assert_allclose(scores[0, 0], expected, rtol=1e-4)
    for hyp in ids:  # nothing is written after a hypothesis' </s>
        end = hyp.tolist().index(EOS_ID)
        assert not hyp[end + 1 :].any()


def test_search_goes_on_while_an_alive_hypothesis_can_still_win():
    # </s> at once is finished first (0.3), but A </s> (0.7 * 0.9 = 0.63) is better.
    model = MarkovModel({BOS_ID: {EOS_ID: 0.3, A: 0.7}, A: {EOS_ID: 0.9, B: 0.1}})
    ids, scores = beam_search(model, SRC, beam_size=2, alpha=0.0)
    assert ids.numpy()[0, 0, :2].tolist() == [A, EOS_ID]
    np.testing.assert_allclose(scores[0], np.log([0.63, 0.3]), rtol=1e-4)


def test_length_penalty_changes_the_ranking():
    # Short: </s> at once (0.5). Longer: A </s> (0.5 * 0.8 = 0.4): wins only with alpha > 0.
    model = MarkovModel({BOS_ID: {EOS_ID: 0.5, A: 0.5}, A: {EOS_ID: 0.8, A: 0.2}})
    short, _ = beam_search(model, SRC, beam_size=2, alpha=0.0, max_len_a=0, max_len_b=2)
    longer, score = beam_search(model, SRC, beam_size=2, alpha=2.0, max_len_a=0, max_len_b=2)
    assert short.numpy()[0, 0, 0] == EOS_ID
    assert longer.numpy()[0, 0, :2].tolist() == [A, EOS_ID]
    np.testing.assert_allclose(score[0, 0], np.log(0.4) / length_penalty(2, 2.0), rtol=1e-4)


# Ending at once scores log 0.6 = -0.51. "A B </s>" has log P = log(0.4 * 0.99 * 0.99) = -0.94,
# but with alpha = 3 its length penalty (8/6)^3 = 2.37 lifts it to -0.40: it wins.
LATE_WINNER = {
    BOS_ID: {EOS_ID: 0.6, A: 0.4},
    A: {B: 0.99, EOS_ID: 0.01},
    B: {EOS_ID: 0.99, A: 0.01},
}


def test_exact_stopping_keeps_searching_while_a_longer_hypothesis_can_still_win():
    model = MarkovModel(LATE_WINNER)
    src = np.array([[7]], np.int32)  # limit 0 * 1 + 3 = 3 pieces, lp(4) = 1.5^3 = 3.375
    kwargs = dict(beam_size=1, alpha=3.0, max_len_a=0.0, max_len_b=3)
    # After step 1 "A" could still reach -0.92 / 3.375 = -0.27 > -0.51: exact goes on ...
    ids, scores = beam_search(model, src, stopping="exact", **kwargs)
    assert ids.numpy()[0, 0].tolist() == [A, B, EOS_ID]  # ... and stops right after finding it
    np.testing.assert_allclose(scores[0, 0], np.log(0.4 * 0.99**2) / (8 / 6) ** 3, rtol=1e-4)
    # Early stopping scores "A" at its current length (-0.92 / lp(1) = -0.92) and gives up.
    ids, scores = beam_search(model, src, stopping="early", **kwargs)
    assert ids.numpy()[0, 0].tolist() == [EOS_ID]
    np.testing.assert_allclose(scores[0, 0], np.log(0.6), rtol=1e-4)
    greedy_ids, _ = greedy_search(model, src, alpha=3.0, max_len_a=0.0, max_len_b=3)
    assert greedy_ids.numpy()[0].tolist() == [EOS_ID]


def test_exact_stopping_rejects_unknown_rules():
    with pytest.raises(ValueError, match="stopping"):
        beam_search(MarkovModel(LATE_WINNER), SRC, beam_size=2, stopping="never")


@pytest.mark.parametrize(
    "alpha, stopping", [(0.0, "exact"), (0.0, "early"), (0.6, "early"), (1.0, "early")]
)
def test_beam_size_one_is_exactly_greedy(alpha, stopping):
    model = random_model(seed=3)
    src = random_batch(np.random.default_rng(3), 16, 9, 50)
    greedy_ids, greedy_scores = greedy_search(model, src, alpha=alpha)
    beam_ids, beam_scores = beam_search(model, src, beam_size=1, alpha=alpha, stopping=stopping)
    width = greedy_ids.shape[1]
    assert beam_ids.shape[2] >= width
    np.testing.assert_array_equal(beam_ids.numpy()[:, 0, :width], greedy_ids.numpy())
    assert not beam_ids.numpy()[:, 0, width:].any()
    np.testing.assert_allclose(beam_scores.numpy()[:, 0], greedy_scores.numpy(), rtol=1e-6)


def test_exact_beam_one_never_scores_below_greedy():
    # Greedy's hypothesis enters beam 1's finished set; exact search only replaces it by better.
    model = random_model(seed=8, sharpen=2.0)
    src = random_batch(np.random.default_rng(8), 32, 9, 50)
    _, greedy_scores = greedy_search(model, src, alpha=1.0)
    _, beam_scores = beam_search(model, src, beam_size=1, alpha=1.0, stopping="exact")
    assert (beam_scores.numpy()[:, 0] >= greedy_scores.numpy() - 1e-5).all()


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_a_sentence_translates_the_same_alone_and_inside_a_mixed_batch(search):
    model = random_model(seed=4, attention="additive")
    rng = np.random.default_rng(4)
    batch = random_batch(rng, 64, 12, 50)
    run = (
        (lambda s: greedy_search(model, s))
        if search == "greedy"
        else (lambda s: (lambda i, sc: (i[:, 0], sc[:, 0]))(*beam_search(model, s, beam_size=4)))
    )
    batch_ids, batch_scores = (x.numpy() for x in run(batch))
    for row in (0, 17, 63):
        length = int((batch[row] != 0).sum())
        alone_ids, alone_scores = (x.numpy() for x in run(batch[row : row + 1, :length]))
        width = alone_ids.shape[1]
        assert batch_ids[row, :width].tolist() == alone_ids[0].tolist()
        assert not batch_ids[row, width:].any()
        np.testing.assert_allclose(batch_scores[row], alone_scores[0], rtol=1e-5)


def test_search_traces_once_for_any_batch_shape():
    model = random_model(seed=5)
    traces = []

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def search(src):
        traces.append(1)
        return beam_search(model, src, beam_size=3)

    rng = np.random.default_rng(5)
    for rows, length in ((1, 3), (7, 9), (64, 12)):
        ids, _ = search(random_batch(rng, rows, length, 50))
        assert ids.shape[:2] == (rows, 3)
    assert len(traces) == 1


def test_sampling_is_seeded_and_top_k_one_is_greedy():
    model = random_model(seed=6)
    src = random_batch(np.random.default_rng(6), 8, 7, 50)
    first, _ = sample_search(model, src, temperature=1.5, seed=11)
    again, _ = sample_search(model, src, temperature=1.5, seed=11)
    other, _ = sample_search(model, src, temperature=1.5, seed=12)
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert first.numpy().tolist() != other.numpy().tolist()
    greedy_ids, greedy_scores = greedy_search(model, src)
    top1_ids, top1_scores = sample_search(model, src, top_k=1, seed=3)
    np.testing.assert_array_equal(top1_ids.numpy(), greedy_ids.numpy())
    np.testing.assert_allclose(top1_scores.numpy(), greedy_scores.numpy(), rtol=1e-6)


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_attention_weights_come_with_the_hypotheses_they_produced(search):
    model = random_model(seed=7)
    src = random_batch(np.random.default_rng(7), 6, 8, 50, min_len=2)
    if search == "greedy":
        ids, scores = greedy_search(model, src)
        ids_a, scores_a, attention = greedy_search(model, src, return_attention=True)
        ids, ids_a, attention = ids[:, None], ids_a[:, None], attention[:, None]
    else:
        ids, scores = beam_search(model, src, beam_size=3)
        ids_a, scores_a, attention = beam_search(model, src, beam_size=3, return_attention=True)
    np.testing.assert_array_equal(ids.numpy(), ids_a.numpy())
    np.testing.assert_allclose(scores.numpy(), scores_a.numpy(), rtol=1e-6)
    attention, ids = attention.numpy(), ids.numpy()
    assert attention.shape == (*ids.shape, src.shape[1])
    for b, k in np.ndindex(*ids.shape[:2]):
        length = ids[b, k].tolist().index(EOS_ID) + 1
        rows = attention[b, k, :length]
        np.testing.assert_allclose(rows.sum(-1), 1.0, rtol=1e-5)  # one distribution per token
        assert not rows[:, src[b] == 0].any()  # never on padding
    # The best hypothesis' weights are those the model gives when it is fed that hypothesis.
    memory, keys, mask, states = model.encode(src[:1])
    tokens = tf.constant([BOS_ID])
    for t in range(ids[0, 0].tolist().index(EOS_ID) + 1):
        _, states, weights = model.decode_step(tokens, states, memory, keys, mask)
        np.testing.assert_allclose(weights.numpy()[0], attention[0, 0, t], rtol=1e-5, atol=1e-6)
        tokens = tf.constant([ids[0, 0, t]])


@pytest.mark.parametrize("search", ["greedy", "beam", "beam-attention"])
def test_compiled_search_returns_what_the_compacting_loop_returns(search):
    """7 sentences of 1-9 pieces: the compiled loop runs them as 8 x 16 (a padding row, seven
    padding columns) and must hand back the compacting loop's ids, scores and attention, with
    the same shapes."""
    model = random_model(seed=9, attention="additive")
    src = random_batch(np.random.default_rng(9), 7, 9, 50)
    if search == "greedy":
        run = lambda jit: greedy_search(model, src, alpha=0.6, jit_compile=jit)  # noqa: E731
    else:
        attention = search == "beam-attention"
        run = lambda jit: beam_search(  # noqa: E731
            model, src, beam_size=3, return_attention=attention, jit_compile=jit
        )
    compacting, compiled = run(False), run(True)
    assert len(compacting) == len(compiled)
    np.testing.assert_array_equal(compiled[0].numpy(), compacting[0].numpy())
    np.testing.assert_allclose(compiled[1].numpy(), compacting[1].numpy(), rtol=1e-5)
    for got, want in zip(compiled[2:], compacting[2:], strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)


class SourceKeyedModel:
    """Sentences whose first piece is 7 end at once; any other (a padding row's lone </s>)
    runs on to its length limit."""

    def __init__(self):
        self.ends = MarkovModel({BOS_ID: {EOS_ID: 0.9, A: 0.1}}).log_table
        self.runs = MarkovModel({BOS_ID: {A: 0.9}, A: {A: 0.9, EOS_ID: 0.05}}).log_table

    def encode(self, src):
        memory = tf.zeros([tf.shape(src)[0], tf.shape(src)[1], 1])
        ends = tf.cast(tf.equal(src[:, :1], 7), tf.float32)
        return memory, memory, tf.not_equal(src, 0), [[ends]]

    def decode_step(self, tokens, states, memory, keys, mask, beam=1):
        ends = states[0][0][:, 0] > 0.5
        log_probs = tf.where(
            ends[:, None], tf.gather(self.ends, tokens), tf.gather(self.runs, tokens)
        )
        weights = tf.zeros([tf.shape(tokens)[0], tf.shape(mask)[1]], tf.float32)
        return log_probs, states, weights


@pytest.mark.parametrize("beam_size", [1, 2])
def test_padding_rows_of_the_compiled_search_do_not_keep_it_running(beam_size):
    """Three sentences run as four: the padding row starts done, so the loop stops when the
    real sentences do (same steps, same shapes as the compacting loop)."""
    src = np.array([[7, 7, 7], [7, 0, 0], [7, 7, 0]], np.int32)
    model = SourceKeyedModel()
    compacting = beam_search(model, src, beam_size=beam_size, alpha=0.0)
    compiled = beam_search(model, src, beam_size=beam_size, alpha=0.0, jit_compile=True)
    assert compiled[0].shape == compacting[0].shape
    np.testing.assert_array_equal(compiled[0], compacting[0])
    np.testing.assert_allclose(compiled[1], compacting[1], rtol=1e-6)


def test_compiled_sampling_is_seeded_and_top_k_one_is_greedy():
    model = random_model(seed=6)
    src = random_batch(np.random.default_rng(6), 5, 7, 50)
    sample = lambda seed, **kw: sample_search(  # noqa: E731
        model, src, temperature=1.5, seed=seed, jit_compile=True, **kw
    )
    first, again, other = sample(11)[0], sample(11)[0], sample(12)[0]
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert first.numpy().tolist() != other.numpy().tolist()
    greedy_ids, _ = greedy_search(model, src)
    np.testing.assert_array_equal(sample(3, top_k=1)[0].numpy(), greedy_ids.numpy())


def test_compiled_shapes_are_powers_of_two_rows_and_multiples_of_eight_columns():
    sizes = list(range(1, 70))
    assert [int(search.power_of_two(n)) for n in sizes] == [
        1 << (n - 1).bit_length() for n in sizes
    ]
    assert [int(search.multiple_of(n, 8)) for n in (0, 1, 8, 9, 63)] == [8, 8, 8, 16, 64]


def test_the_fixed_shape_loop_traces_for_a_static_batch_shape():
    """What XLA sees: every shape known (one sentence: gathers lose a batch dimension of 1).
    The backtracking carry must keep them."""
    model = random_model(seed=10)
    src = tf.constant(random_batch(np.random.default_rng(10), 1, 8, 50))
    strategy = strategies.BeamSearch(3, 0.6)
    ids, scores, steps = tf.function(lambda x: loop.decode(model, x, strategy, compact=False))(src)
    want_ids, want_scores = beam_search(model, src, beam_size=3)
    np.testing.assert_array_equal(ids[:, :, :steps], want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5)


def test_done_sentences_keep_their_finished_set_in_the_fixed_shape_loop():
    """Without compaction a done sentence goes on computing beside one that is not; what it
    returns must not change. ``freeze`` keeps a done row's finished set as it was."""
    model = MarkovModel({BOS_ID: {A: 0.9, EOS_ID: 0.1}, A: {A: 0.9, EOS_ID: 0.1}})
    short, mixed = SRC[:, :1], np.array([[7, 0, 0, 0, 0, 0], [7, 7, 7, 7, 7, 7]], np.int32)
    alone = loop.decode(model, short, strategies.BeamSearch(2, 1.5), compact=False)
    beside = loop.decode(model, mixed, strategies.BeamSearch(2, 1.5), compact=False)
    steps = int(alone[-1])
    np.testing.assert_array_equal(beside[0][0, :, :steps], alone[0][0, :, :steps])
    np.testing.assert_allclose(beside[1][0], alone[1][0], rtol=1e-6)
    assert int(beside[-1]) > steps  # the long sentence ran on (its limit is higher)

    finished = lambda score: strategies.Finished(  # noqa: E731
        tf.constant([[score, score]]), tf.constant([[1, 2]]), tf.constant([[0, 1]])
    )
    active = loop.Active(*[None] * 8, finished=finished(-1.0), done=tf.constant([True]))
    new = strategies.Step(None, None, None, finished(-0.5), done=tf.constant([False]))
    frozen = loop.freeze(active, new)
    np.testing.assert_array_equal(frozen.finished.score, [[-1.0, -1.0]])
    assert frozen.done.numpy().tolist() == [True]
    live = loop.freeze(active._replace(done=tf.constant([False])), new)
    np.testing.assert_array_equal(live.finished.score, [[-0.5, -0.5]])


# Brute force. Bigram models over the real tokens 4-7 and </s> (PAD, UNK and BOS never come out):
# few enough hypotheses to list them all, and a model may allow only some successors.
REAL = (4, 5, 6, 7)
VOCAB = 8
Scored = tuple[float, tuple[int, ...]]  # (score, tokens ending in </s>)


class BigramModels:
    """One bigram table per sentence: a sentence's first source id ``4 + i`` picks table ``i``,
    so one batch holds several models; its length sets its length limit."""

    def __init__(self, tables: list[np.ndarray]):
        tables = np.stack(tables)
        self.tables = tf.constant(np.where(np.isfinite(tables), tables, NEG_INF), tf.float32)

    def encode(self, src):
        src = tf.convert_to_tensor(src)
        mask = tf.not_equal(src, 0)
        memory = tf.zeros([tf.shape(src)[0], tf.shape(src)[1], 1])
        return memory, memory, mask, [[src[:, 0] - REAL[0]]]

    def decode_step(self, tokens, states, memory, keys, mask, beam=1):
        rows = tf.stack([states[0][0], tokens], axis=1)
        weights = tf.zeros([tf.shape(tokens)[0], tf.shape(mask)[1]], tf.float32)
        return tf.gather_nd(self.tables, rows), states, weights


def _normalised(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities ``[V, V]`` from logits where ``-inf`` marks an impossible successor."""
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def dense_table(rng: np.random.Generator) -> np.ndarray:
    """Any real token or </s> may follow BOS and every real token, with seeded random odds."""
    logits = np.full((VOCAB, VOCAB), -np.inf)
    logits[:, [EOS_ID, *REAL]] = rng.normal(size=(VOCAB, len(REAL) + 1))
    return _normalised(logits)


def chain_table(rng: np.random.Generator, branches: int) -> np.ndarray:
    """``branches`` real tokens may follow BOS; one real token (or </s>) may follow each token."""
    logits = np.full((VOCAB, VOCAB), -np.inf)
    logits[:, EOS_ID] = rng.normal(size=VOCAB)
    logits[np.arange(VOCAB), rng.choice(REAL, size=VOCAB)] = rng.normal(size=VOCAB)
    logits[BOS_ID, REAL] = -np.inf
    logits[BOS_ID, rng.choice(REAL, size=branches, replace=False)] = rng.normal(size=branches)
    return _normalised(logits)


def hypothesis_log_prob(table: np.ndarray, tokens: tuple[int, ...]) -> float:
    """``log P(tokens)`` from BOS under a bigram table (``-inf`` if the model rules it out)."""
    return float(table[[BOS_ID, *tokens[:-1]], list(tokens)].sum())


def candidates_by_step(table: np.ndarray, limit: int) -> list[list[tuple[int, ...]]]:
    """The candidates the model allows at each step of search: each allowed prefix of real
    tokens, followed by each token allowed after it (only </s> once it has ``limit`` tokens)."""
    steps, prefixes = [], [()]
    for t in range(limit + 1):
        allowed = (EOS_ID,) if t == limit else (EOS_ID, *REAL)
        steps.append(
            [
                (*p, token)
                for p in prefixes
                for token in allowed
                if np.isfinite(table[p[-1] if p else BOS_ID, token])
            ]
        )
        prefixes = [c for c in steps[-1] if c[-1] != EOS_ID]
    return steps


def all_hypotheses(table: np.ndarray, limit: int, alpha: float) -> list[Scored]:
    """Every hypothesis the model allows, best first, by the rules of s2s.search: at most
    ``limit`` tokens, then </s>; score ``log P / lp(n)``, ``n`` counting </s>."""
    out = []
    for step in candidates_by_step(table, limit):
        for tokens in step:
            if tokens[-1] == EOS_ID:
                log_prob = hypothesis_log_prob(table, tokens)
                out.append((log_prob / ((5 + len(tokens)) / 6) ** alpha, tokens))
    return sorted(out, reverse=True)


def most_candidates(table: np.ndarray, limit: int) -> int:
    """The most candidates the model allows at any step."""
    return max(map(len, candidates_by_step(table, limit)))


def returned_hypotheses(ids: np.ndarray, scores: np.ndarray) -> list[Scored]:
    """A sentence's ``ids [K, T]`` and ``scores [K]`` as (score, tokens up to </s>); finished
    slots never filled (score near ``NEG_INF``) left out. Nothing may follow a </s>."""
    out = []
    for hyp, score in zip(ids.tolist(), scores.tolist(), strict=True):
        if score > -1e20:
            end = hyp.index(EOS_ID) + 1
            assert not any(hyp[end:]), hyp
            out.append((score, tuple(hyp[:end])))
    return out


def bigram_batch(seeds: int = 40) -> tuple[list[np.ndarray], list[int], np.ndarray]:
    """Three sentences a seed, each with its own table and limit (its source length): a dense
    table (limit 1-3), a chain (one branch after BOS) and a fork (two), limit 4-6. Forty seeds
    give rare cases their chance: that a longer hypothesis wins late under ``alpha = 1.5``."""
    tables, limits = [], []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        tables += [dense_table(rng), chain_table(rng, 1), chain_table(rng, 2)]
        limits += [1 + seed % 3, 4 + seed % 3, 4 + seed % 3]
    src = np.zeros((len(tables), max(limits)), np.int32)
    for row, limit in enumerate(limits):
        src[row, :limit] = REAL[0] + row
    return tables, limits, src


def assert_possible(found: list[Scored], best: list[Scored], k: int) -> None:
    """What any beam must return: ``min(k, all)`` hypotheses the model allows, none twice, each
    with its exact score, best first, the j-th no better than the true j-th best."""
    true_score = {tokens: score for score, tokens in best}
    assert len(found) == min(k, len(best))
    assert len({tokens for _, tokens in found}) == len(found)
    for j, (score, tokens) in enumerate(found):
        assert tokens in true_score, tokens
        np.testing.assert_allclose(score, true_score[tokens], rtol=1e-5, atol=1e-5)
        assert score <= best[j][0] + 1e-5
        assert j == 0 or score <= found[j - 1][0]


def assert_top_k(found: list[Scored], best: list[Scored], k: int) -> None:
    """The true top ``k``, tokens and scores; hypotheses whose scores tie within 1e-5 (float32
    against float64) may come in either order."""
    true_score = {tokens: score for score, tokens in best}
    for (_, tokens), (best_score, best_tokens) in zip(found, best[:k], strict=True):
        assert tokens == best_tokens or abs(true_score[tokens] - best_score) < 1e-5
    np.testing.assert_allclose([s for s, _ in found], [s for s, _ in best[:k]], atol=1e-5)


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("alpha", [0.6, 1.5])
@pytest.mark.parametrize("beam_size, exhaustive", [(1, 0), (3, 40), (5, 94), (None, 120)])
def test_exact_beam_search_against_brute_force(alpha, beam_size, exhaustive, jit_compile):
    """Beam search (``stopping="exact"``) against a list of every hypothesis of seeded bigram
    models, scored by the module's rules (``n`` counts </s>, at most ``limit`` tokens before it,
    ``log P / lp(n)``), one model and limit per sentence of the batch.

    ``jit_compile``: the fixed-shape loop compiled by XLA (done sentences stay in the batch,
    padding rows and columns added) is held to the same.

    A beam of ``K`` is no exhaustive search, and s2s.search does not claim one: exact stopping
    only promises that going on would not improve the finished set. So every beam is held to
    :func:`assert_possible`: real hypotheses, exactly scored, never better than the optimum.

    Where each step has at most ``K`` candidates the model allows (chains and forks, dense
    sentences of limit 1, every sentence under the widest beam), every candidate ranks among a
    step's best ``K``: each </s> one is finished, each other one stays alive, and nothing is
    lost. Then the result must be the true top ``K`` (:func:`assert_top_k`). Beam 1 never is
    (a chain has two candidates a step; an </s> that is not the best of them is dropped).
    """
    tables, limits, src = bigram_batch()
    k = beam_size or max(map(most_candidates, tables, limits))
    ids, scores = beam_search(
        BigramModels(tables),
        src,
        k,
        alpha,
        max_len_a=1.0,
        max_len_b=0,
        stopping="exact",
        jit_compile=jit_compile,
    )
    checked = 0
    for row, (table, limit) in enumerate(zip(tables, limits, strict=True)):
        best = all_hypotheses(table, limit, alpha)
        found = returned_hypotheses(ids.numpy()[row], scores.numpy()[row])
        assert_possible(found, best, k)
        if most_candidates(table, limit) <= k:
            assert_top_k(found, best, k)
            checked += 1
    assert checked == exhaustive
    # The length penalty matters: it changes some sentence's best translation.
    assert any(
        all_hypotheses(t, n, alpha)[0] != all_hypotheses(t, n, 0.0)[0]
        for t, n in zip(tables, limits, strict=True)
    )


class CountingRows(BigramModels):
    """Counts the hypothesis rows each decoder step is asked to compute."""

    def __init__(self, tables):
        super().__init__(tables)
        self.rows = tf.Variable(0)

    def decode_step(self, tokens, states, memory, keys, mask, beam=1):
        self.rows.assign_add(tf.shape(tokens)[0])
        return super().decode_step(tokens, states, memory, keys, mask, beam)


def quick_and_slow_tables() -> list[np.ndarray]:
    """Sentence 0 ends at once (</s> after BOS, or after one token); sentence 1 never wants
    to end: only its length limit stops it."""
    quick = np.full((VOCAB, VOCAB), 1e-6)
    quick[BOS_ID, EOS_ID], quick[BOS_ID, REAL[0]] = 0.9, 0.1
    quick[REAL, EOS_ID] = 0.99
    slow = np.full((VOCAB, VOCAB), 1e-6)
    slow[:, REAL] = 0.25
    return [np.log(t / t.sum(1, keepdims=True)) for t in (quick, slow)]


@pytest.mark.parametrize("beam_size", [1, 2])
def test_done_sentences_leave_the_batch(beam_size):
    """Once a sentence is done, no step computes its hypotheses: the rows stepped are K per
    sentence per step it was still searching, not K per sentence per step of the batch."""
    src = np.array([[REAL[0], 5, 0, 0, 0, 0], [REAL[0] + 1] * 6], np.int32)
    model = CountingRows(quick_and_slow_tables())
    ids, _ = beam_search(model, src, beam_size, alpha=0.0, max_len_a=1.0, max_len_b=0)
    # The slow sentence steps 0..6 (</s> forced at its limit of 6); the quick one is done
    # after step 0 (greedy: its </s>) or step 1 (beam 2: a second finished hypothesis).
    quick_steps = 1 if beam_size == 1 else 2
    assert int(model.rows.numpy()) == beam_size * (quick_steps + 7)
    assert ids.shape[-1] == 7
    assert ids.numpy()[1, 0].tolist() == [*ids.numpy()[1, 0, :6], EOS_ID]
    alone, _ = beam_search(model, src[:1, :2], beam_size, alpha=0.0, max_len_a=1.0, max_len_b=0)
    width = alone.shape[-1]
    np.testing.assert_array_equal(ids.numpy()[0, :, :width], alone.numpy()[0])


@pytest.mark.parametrize("vocab", [4000, 4003, 41, 7])
def test_top_k_by_blocks_is_tensorflows_top_k(vocab):
    """The blocked top-k returns what ``tf.math.top_k`` returns, indices included: on ties
    (rounded values, whole rows equal, ties across block edges), with the vocabulary not a
    multiple of the block (padding), and with few blocks (it falls back)."""
    rng = np.random.default_rng(vocab)
    noisy = rng.normal(size=(32, vocab)) * 3
    tied = np.round(rng.normal(size=(32, vocab)))  # many equal values in every row
    flat = np.zeros((4, vocab))
    edges = np.zeros((4, vocab))
    edges[:, 39::40] = 1.0  # the last entry of every block ...
    edges[:, 40::40] = 1.0  # ... ties with the first of the next
    top = tf.function(lambda x, k: strategies.top_k(x, k))
    for values in (noisy, tied, flat, edges, np.log(np.abs(noisy) / 1e3)):
        values = tf.constant(values, tf.float32)
        for k in (1, min(10, vocab), min(25, vocab)):
            found, expected = top(values, k), tf.math.top_k(values, k)
            np.testing.assert_array_equal(found[0], expected.values)
            np.testing.assert_array_equal(found[1], expected.indices)
