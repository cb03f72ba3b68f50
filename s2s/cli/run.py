"""``s2s train`` and ``s2s prepare``: a run's data stage, and training on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from s2s.cli.common import config_args, config_of, log, train_run


def add_parsers(sub) -> None:
    p = sub.add_parser("train", help="prepare data, train, evaluate on test")
    config_args(p)
    p.add_argument("--run", help="run folder (default runs/<lang>)")
    p.add_argument("--corpus", help="a TSV corpus file instead of the configured corpus")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "prepare",
        help="run the data stage alone (cleaning, dev/test sets, SentencePiece, shards) and "
        "report on it; train then reuses it",
    )
    config_args(p)
    p.add_argument("--run", help="run folder (default runs/<lang>)")
    p.add_argument("--corpus", help="a TSV corpus file instead of the configured corpus")
    p.add_argument("--report", help="also write the cleaning report as JSON here")
    p.add_argument(
        "--stats",
        action="store_true",
        help="also print length percentiles, pairs lost per maximum length, vocabulary coverage",
    )
    p.add_argument("--plot", default="lengths.png", help="--stats: length histogram PNG")
    p.add_argument("--lm-run", help="a language model run: print the least likely pairs")
    p.add_argument("--least-likely", type=int, default=20, help="--lm-run: how many pairs")
    p.set_defaults(func=cmd_prepare)


def cmd_train(args) -> int:
    result = train_run(config_of(args), args.run or f"runs/{args.lang}", args.corpus)
    if result is None:
        return 1
    shown = {k: result[k] for k in ("bleu", "chrf", "bleu_signature") if k in result}
    print(json.dumps(shown, ensure_ascii=False))
    return 0


def cmd_prepare(args) -> int:
    from s2s.config.run_folder import RunPaths, read_state, start
    from s2s.data.stage import fixed_shards, prepare

    config = config_of(args)
    paths = RunPaths(Path(args.run or f"runs/{args.lang}"))
    start(paths, config)
    fixed = fixed_shards(paths, paths, read_state(paths))
    data = prepare(
        config, paths, Path(args.corpus) if args.corpus else None, log, fixed_shards=fixed
    )
    if args.report:
        shutil.copyfile(paths.cleaning, args.report)
    if args.stats:
        from s2s.analysis import corpus_stats

        stats = corpus_stats.corpus_stats(data, paths.data, config)
        print(corpus_stats.render(stats, config))
        langs = (config["data"]["src_lang"], config["data"]["tgt_lang"])
        log(f"written to {corpus_stats.length_histogram(stats['lengths'], args.plot, langs)}")
    if args.lm_run:
        from s2s.analysis.least_likely import least_likely

        side, rows = least_likely(paths.data, args.lm_run, args.least_likely)
        print(f"the {len(rows)} training pairs least likely to {args.lm_run} ({side} side):")
        print("perplexity\tline\tsrc\ttgt")
        for perplexity, line, src, tgt in rows:
            print(f"{perplexity:.1f}\t{line}\t{src}\t{tgt}")
    log(f"prepared {paths.root}: train with --run {paths.root} to reuse it")
    return 0
