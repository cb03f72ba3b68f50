"""Search settings chosen on dev once training ends: the length penalty ``search.alpha``.

Beam search prefers short hypotheses as the model grows confident; the GNMT penalty's ``alpha``
that corrects it best depends on the model, so each run picks it on its dev set (each value is
one dev decoding: ~6 s for 1,000 Tatoeba sentences at beam 5 here) and records the choice in
``state.json``; :func:`s2s.runs.load_trained` hands it to every later use of the run.
"""

from __future__ import annotations

from s2s.data import EvalSet
from s2s.trainer import dev_scores
from s2s.translate import Translator


def tune_alpha(model, src_tok, tgt_tok, config: dict, dev: EvalSet, log=print) -> dict | None:
    """Dev BLEU at each ``search.tune_alpha`` value, beam ``search.beam_size``; returns
    ``{"alpha": best, "dev_bleu": [[alpha, bleu], ...]}`` (None: nothing to tune)."""
    search = config["search"]
    if not search["tune_alpha"] or search["beam_size"] == 1:
        return None
    tried = []
    for alpha in search["tune_alpha"]:
        translator = Translator.from_config(model, src_tok, tgt_tok, config, alpha=alpha)
        tried.append([alpha, dev_scores(translator, dev, config).bleu])
    best = max(tried, key=lambda pair: pair[1])[0]  # ties: the first listed
    log(
        f"length penalty on dev (beam {search['beam_size']}): "
        + ", ".join(f"alpha {a:g} BLEU {b:.2f}" for a, b in tried)
        + f": using alpha {best:g}"
    )
    return {"alpha": best, "dev_bleu": tried}
