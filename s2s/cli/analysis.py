"""``s2s bench``, ``s2s grid``, ``s2s plot`` and ``s2s experiments``: speed, the cell x attention
grid, figures, and the experiment log."""

from __future__ import annotations

from pathlib import Path

from s2s.cli.common import config_args, config_of, log


def add_parsers(sub) -> None:
    p = sub.add_parser("bench", help="measure training, input, search and serving speed")
    config_args(p)
    p.add_argument("--run", help="trained run for the decoding figures (default runs/<lang>)")
    p.add_argument("--seconds", type=float, default=60.0, help="training measurement length")
    p.add_argument(
        "--train-only", action="store_true", help="skip decoding and serving (training levers)"
    )
    p.add_argument(
        "--decode-only", action="store_true", help="skip the input pipeline and training"
    )
    p.add_argument("--out", default="bench/results.json")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("grid", help="train every cell x attention for the same minutes")
    config_args(p)
    p.add_argument("--out", help="folder of the grid's runs and tables (runs/grid/<lang>)")
    p.add_argument("--corpus", help="a TSV corpus file instead of the configured corpus")
    p.set_defaults(func=cmd_grid)

    p = sub.add_parser("plot", help="save a figure as PNG: learning curves or attention")
    p.add_argument("figure", choices=["curves", "attention"])
    p.add_argument("--run", default="runs/zh-en")
    p.add_argument("--sentence", default="我们走吧。", help="source sentence (attention)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("experiments", help="the experiment log table from run folders")
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--out", help="write the Markdown here (default: stdout)")
    p.set_defaults(func=cmd_experiments)


def cmd_bench(args) -> int:
    from s2s.analysis.bench import run_bench, table, write_results

    config = config_of(args)
    run = Path(args.run or f"runs/{args.lang}")
    trained = run if (run / "model.keras").exists() else None
    work = Path("bench") / "work" / args.lang
    results = run_bench(
        config,
        work,
        trained,
        args.seconds,
        decoding=not args.train_only,
        training=not args.decode_only,
    )
    if trained is not None and not args.train_only:
        from s2s.analysis.bench import bench_sources
        from s2s.decoding.translator import Translator
        from s2s.models.loading import load_trained
        from s2s.serving.bench import serving_figures

        log("SavedModel vs Python: batch-1 latency, batch-32 throughput ...")
        precision, jit = config["search"]["precision"], config["search"]["jit_compile"]
        run_config, model, src_tok, tgt_tok = load_trained(trained, precision=precision)
        translator = Translator.from_config(model, src_tok, tgt_tok, run_config, jit_compile=jit)
        sentences = bench_sources(work)[:128]
        results.update(serving_figures(trained, translator, sentences, precision, jit))
    print(table(results))
    write_results(results, Path(args.out))
    log(f"written to {args.out}")
    return 0


def cmd_grid(args) -> int:
    from s2s.analysis.cell_grid import run_grid

    config = config_of(args)
    out = Path(args.out or f"runs/grid/{args.lang}")
    frame = run_grid(config, out, Path(args.corpus) if args.corpus else None, log=log)
    print(frame.to_markdown(index=False, intfmt=","))
    log(f"written to {out / 'grid.md'} and {out / 'grid.csv'}")
    return 0


def cmd_plot(args) -> int:
    from s2s.analysis import plots

    if args.figure == "curves":
        fig = plots.learning_curves(Path(args.run) / "logs" / "train.csv")
    else:
        from s2s.decoding.translator import Translator
        from s2s.models.loading import load_trained

        config, model, src_tok, tgt_tok = load_trained(args.run)
        translator = Translator.from_config(model, src_tok, tgt_tok, config)
        source, output, weights = translator.attention(args.sentence)
        fig = plots.attention_heatmap(source, output, weights, title=args.sentence)
    log(f"written to {plots.save(fig, args.out)}")
    return 0


def cmd_experiments(args) -> int:
    from s2s.analysis.experiment_log import experiment_log

    text = experiment_log([Path(r) for r in args.runs])
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        log(f"written to {args.out}")
    else:
        print(text, end="")
    return 0
