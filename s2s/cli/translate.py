"""``s2s translate``: text in (stdin or a file), translations out, one line each."""

from __future__ import annotations

import contextlib
import sys

from s2s.cli.common import fusion_args, jit_arg, load_model, model_args, precision_arg


def add_parsers(sub) -> None:
    p = sub.add_parser("translate", help="translate stdin (or --input) line by line")
    model_args(p)
    p.add_argument("--input", help="a text file (default: stdin)")
    p.add_argument("--output", help="a file to write (default: stdout)")
    p.add_argument("--beam", type=int, help="beam size (1 = greedy); default from the config")
    p.add_argument("--alpha", type=float, help="length penalty; default from the config")
    p.add_argument("--batch-size", type=int)
    p.add_argument(
        "--nbest", type=int, default=1, help="write the N best: text<TAB>score<TAB>... per line"
    )
    p.add_argument("--sample", action="store_true", help="sample instead of searching")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    p.add_argument("--top-k", type=int, default=0, help="sample from the k best tokens (0: all)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same output)")
    fusion_args(p)
    precision_arg(p)
    jit_arg(p)
    p.set_defaults(func=cmd_translate)


def cmd_translate(args) -> int:
    from s2s.decoding.translator import Sampling, Translator

    config, model, src_tok, tgt_tok = load_model(args, args.precision)
    sampling = Sampling(args.temperature, args.top_k, args.seed) if args.sample else None
    translator = Translator.from_config(
        model,
        src_tok,
        tgt_tok,
        config,
        sampling=sampling,
        beam_size=args.beam,
        alpha=args.alpha,
        batch_size=args.batch_size,
        lm_run=args.lm_run,
        lm_weight=args.lm_weight,
        jit_compile=args.jit_compile,
    )
    if args.nbest > max(1, translator.beam_size if sampling is None else 1):
        raise SystemExit(f"--nbest {args.nbest} needs a beam of at least {args.nbest}")
    progress = None
    if args.input:
        from tqdm.auto import tqdm

        with open(args.input, encoding="utf-8") as f:
            total = sum(1 for _ in f)
        progress = tqdm(total=total, unit="sent", desc="translating", file=sys.stderr)
    with contextlib.ExitStack() as files:
        source = (
            files.enter_context(open(args.input, encoding="utf-8")) if args.input else sys.stdin
        )
        out = (
            files.enter_context(open(args.output, "w", encoding="utf-8"))
            if args.output
            else sys.stdout
        )
        for hyp in translator.translate_stream(source, progress=progress):
            if args.nbest > 1:
                nbest = (hyp.nbest + [("", 0.0)] * args.nbest)[: args.nbest]  # empty lines: 1
                out.write("\t".join(f"{t}\t{s:.4f}" for t, s in nbest))
            else:
                out.write(hyp.text)
            out.write("\n")
            out.flush()
    if progress is not None:
        progress.close()
    return 0
