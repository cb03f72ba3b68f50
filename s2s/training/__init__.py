"""Training: the one runner for translation and language models (:mod:`.runner`), its tasks,
the loop and its intervals, checkpoints and averaging, scorers, schedules, distribution and the
search settings chosen on dev."""
