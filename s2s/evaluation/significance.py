"""Is one system really better than another? sacreBLEU's paired bootstrap resampling over
several systems' translations of the same sentences."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from s2s.evaluation.metrics import metrics, reference_streams


def paired_bootstrap(
    systems: Sequence[tuple[str, Sequence[str]]],
    references: Sequence[Sequence[str]],
    tgt_lang: str,
    tokenize: str | None = None,
    samples: int = 1000,
    lowercase: bool = False,
) -> pd.DataFrame:
    """Scores of several systems on the same sentences, with paired bootstrap resampling.

    The first system is the baseline: each other row has the p-value of its difference from it
    (sacreBLEU's ``PairedTest``, seeded by ``SACREBLEU_SEED``) and a 95% confidence interval.
    """
    from sacrebleu.significance import PairedTest

    for name, hyps in systems:
        if len(hyps) != len(references):
            raise ValueError(f"{name}: {len(hyps)} translations for {len(references)} sentences")
    test = PairedTest(
        [(name, list(hyps)) for name, hyps in systems],
        metrics(tgt_lang, tokenize, lowercase),
        reference_streams(references),
        test_type="bs",
        n_samples=samples,
    )
    _, results = test()
    rows = []
    for i, name in enumerate(results["System"]):
        row = {"system": name.replace("Baseline: ", "")}
        for metric, key in (("BLEU", "BLEU"), ("chrF", "chrF2"), ("TER", "TER")):
            r = results[key][i]  # sacreBLEU names chrF after its beta
            row[metric] = round(r.score, 2)
            row[f"{metric} 95% CI"] = f"± {r.ci:.2f}" if r.ci is not None else ""
            row[f"{metric} p"] = r.p_value
        rows.append(row)
    return pd.DataFrame(rows)
