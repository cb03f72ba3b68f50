"""``s2s export`` (a SavedModel for TensorFlow Serving) and ``s2s demo`` (the page)."""

from __future__ import annotations

from pathlib import Path

from s2s.cli.common import fusion_args, jit_arg, log, model_args, precision_arg, runs_of


def add_parsers(sub) -> None:
    p = sub.add_parser("export", help="write a string-in, string-out SavedModel for serving")
    model_args(p)
    p.add_argument("--out", help="versioned export folder (default exports/<run name>)")
    p.add_argument("--beam", type=int, help="beam size; default from the run's config")
    fusion_args(p)
    precision_arg(p)
    jit_arg(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("demo", help="a translation page over a run (or a SavedModel)")
    model_args(p)
    p.add_argument("--export", help="an exported SavedModel version folder instead of a run")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--clusters", type=int, default=8, help="k-means clusters of encoder states")
    p.set_defaults(func=cmd_demo)


def cmd_export(args) -> int:
    from s2s.serving.export import export

    first, others, checkpoints = runs_of(args)
    out = Path(args.out) if args.out else Path("exports") / Path(first).name
    target = export(
        first,
        out,
        others=others,
        checkpoints=checkpoints,
        beam_size=args.beam,
        lm_run=args.lm_run,
        lm_weight=args.lm_weight,
        precision=args.precision,
        jit_compile=args.jit_compile,
    )
    log(f"exported {', '.join([first, *others])} to {target}")
    print(target)
    return 0


def cmd_demo(args) -> int:
    from s2s.serving import app, engines

    if args.export:
        engine = engines.SavedModelEngine(args.export)
    else:
        first, others, checkpoints = runs_of(args)
        engine = engines.RunEngine(first, args.clusters, others=others, checkpoints=checkpoints)
    app.serve(engine, args.host, args.port)
    return 0
