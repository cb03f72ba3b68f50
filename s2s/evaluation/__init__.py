"""Evaluation: sacreBLEU metrics with their signatures, reports of a run's dev and test sets,
output length by source length, paired bootstrap significance, language-model perplexity."""
