"""Search settings chosen on dev once training ends: the beam size and the length penalty.

Beam search prefers short hypotheses as the model grows confident; the GNMT penalty's ``alpha``
that corrects it best depends on the model, and so does the beam size past which a wider search
stops finding better translations (zh-en recipe, run T: dev BLEU 39.26 at beam 5, 39.71 at 8).
Each run decodes its dev set at every ``search.tune_beam`` x ``search.tune_alpha`` pair (one
dev decoding each: ~5 s for 1,000 Tatoeba sentences at beam 5 here, ~7.5 s at beam 12) and
records the best in ``state.json``; :func:`s2s.models.loading.load_trained` hands it to every
later use of the run.
"""

from __future__ import annotations

from s2s.data.sets import EvalSet
from s2s.decoding.translator import Translator
from s2s.evaluation.reports import set_scores


def search_grid(search: dict) -> list[tuple[int, float]]:
    """The ``(beam_size, alpha)`` pairs to try on dev, beam-major in the order listed; an empty
    ``tune_beam`` or ``tune_alpha`` holds the config's value. Empty when there is nothing to
    choose: neither list given, or greedy search and no beam sizes to try."""
    if not search["tune_beam"] and (not search["tune_alpha"] or search["beam_size"] == 1):
        return []
    beams = search["tune_beam"] or [search["beam_size"]]
    alphas = search["tune_alpha"] or [search["alpha"]]
    # beam 1 is greedy search whatever the penalty: one decoding
    return [(beam, alpha) for beam in beams for alpha in (alphas if beam > 1 else alphas[:1])]


def tune_search(model, src_tok, tgt_tok, config: dict, dev: EvalSet, log=print) -> dict | None:
    """Dev BLEU at each pair of :func:`search_grid`; returns ``{"beam_size": best, "alpha":
    best, "dev_bleu": [[beam_size, alpha, bleu], ...]}`` (None: nothing to tune). Ties go to the
    pair listed first, so list the cheaper beam sizes first."""
    tried = []
    for beam, alpha in search_grid(config["search"]):
        translator = Translator.from_config(
            model, src_tok, tgt_tok, config, beam_size=beam, alpha=alpha
        )
        tried.append([beam, alpha, set_scores(translator, dev, config).bleu])
    if not tried:
        return None
    beam, alpha, _ = max(tried, key=lambda row: row[2])
    log(
        "beam size and length penalty on dev: "
        + ", ".join(f"beam {b} alpha {a:g} BLEU {s:.2f}" for b, a, s in tried)
        + f": using beam {beam} alpha {alpha:g}"
    )
    return {"beam_size": beam, "alpha": alpha, "dev_bleu": tried}
