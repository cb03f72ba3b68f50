"""``python -m s2s train|translate|evaluate|prepare|export|bench|compare|plot|experiments``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from s2s.choices import DECODE_PRECISIONS
from s2s.config import ConfigError, load_config
from s2s.data import CorpusError


def _utf8_stdio() -> None:
    """Text in and out is UTF-8 whatever the caller's locale (``make train LANG=zh-en`` ...)."""
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(
                encoding="utf-8", errors="replace" if stream is sys.stdin else "strict"
            )


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lang", default="zh-en", help="language pair, e.g. zh-en (data/<lang>.yaml)"
    )
    parser.add_argument("--config", help="a config file instead of data/<lang>.yaml")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config key (repeatable)",
    )


def cmd_train(args) -> int:
    from s2s.train import TrainingDiverged, train

    config = load_config(args.lang, args.config, args.overrides)
    run = args.run or f"runs/{args.lang}"
    try:
        result = train(config, run, Path(args.corpus) if args.corpus else None, log=_log)
    except TrainingDiverged as e:
        _log(f"error: {e}")
        return 1
    print(
        json.dumps({k: result[k] for k in ("bleu", "chrf", "bleu_signature")}, ensure_ascii=False)
    )
    return 0


def cmd_prepare(args) -> int:
    from s2s import data as data_lib

    config = load_config(args.lang, args.config, args.overrides)
    frame, report = data_lib.read_and_clean(config, Path(args.corpus) if args.corpus else None)
    _log(report.summary())
    if args.report:  # before the split, which may refuse a corpus too small to hold out from
        Path(args.report).write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
    data = config["data"]
    splits = data_lib.split(frame, data["dev_sources"], data["test_sources"], data["seed"])
    _log(f"split: {splits.sizes()}")
    if args.stats:
        from s2s import corpus_stats

        stats = corpus_stats.corpus_stats(splits, config, Path(args.spm) if args.spm else None)
        print(corpus_stats.render(stats, config))
        langs = (data["src_lang"], data["tgt_lang"])
        _log(f"written to {corpus_stats.length_histogram(stats['lengths'], args.plot, langs)}")
    if args.lm_run:
        _least_likely(splits.train, args.lm_run, args.least_likely)
    return 0


def _least_likely(train, lm_run: str, n: int) -> None:
    """Print the ``n`` training pairs a language model finds least likely per piece: the odd
    lines of a corpus (wrong language, misaligned, boilerplate)."""
    import math

    from s2s.language_model import sentence_log_probs
    from s2s.runs import load_language_model

    config, lm, tokenizer = load_language_model(lm_run)
    side = config["lm"]["side"]
    ids = tokenizer.encode(train[side].tolist())
    per_piece = -sentence_log_probs(lm, ids) / [len(x) + 1 for x in ids]
    print(f"the {n} training pairs least likely to {lm_run} ({side} side), per piece:")
    print("perplexity\tline\tsrc\ttgt")
    for i in per_piece.argsort()[::-1][:n]:
        row = train.iloc[int(i)]
        print(f"{math.exp(per_piece[i]):.1f}\t{row['line']}\t{row['src']}\t{row['tgt']}")


def cmd_translate(args) -> int:
    from s2s.runs import load_trained
    from s2s.translate import Sampling, Translator

    config, model, src_tok, tgt_tok = load_trained(args.run, precision=args.precision)
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
    source = open(args.input, encoding="utf-8") if args.input else sys.stdin
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    progress = None
    if args.input:
        from tqdm.auto import tqdm

        with open(args.input, encoding="utf-8") as f:
            total = sum(1 for _ in f)
        progress = tqdm(total=total, unit="sent", desc="translating", file=sys.stderr)
    with source, out:
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


def cmd_evaluate(args) -> int:
    from s2s.evaluate import score

    if args.compare:
        return _compare_runs(args)
    if args.hyp:
        hyps = Path(args.hyp).read_text(encoding="utf-8").splitlines()
        ref_files = [Path(r).read_text(encoding="utf-8").splitlines() for r in args.ref]
        for path, refs in zip(args.ref, ref_files, strict=True):
            if len(refs) != len(hyps):
                raise SystemExit(f"{path}: {len(refs)} lines, but {args.hyp} has {len(hyps)}")
        refs = [[r[i] for r in ref_files if r[i]] for i in range(len(hyps))]
        lang = args.tgt_lang or "en"
        print(score(hyps, refs, lang, args.tokenize).summary())
        return 0
    from s2s import data as data_lib
    from s2s import runs
    from s2s.runs import load_trained
    from s2s.train import evaluate_set

    config, model, src_tok, tgt_tok = load_trained(args.run, precision=args.precision)
    if args.tokenize:
        config["eval"]["tokenize"] = args.tokenize
    for key in ("lm_run", "lm_weight"):
        if getattr(args, key) is not None:
            config["search"][key] = getattr(args, key)
    paths = runs.RunPaths(Path(args.run))
    sets = data_lib.load_eval_sets(paths.data)
    names = [n for n in sets if n != "dev"] if args.split == "all" else [args.split]
    for name in names:
        if name not in sets:
            raise SystemExit(f"{args.run} has no set {name!r} (it has: {', '.join(sets)})")
        evaluate_set(config, paths, model, src_tok, tgt_tok, sets[name], _log, args.beam)
    return 0


def cmd_export(args) -> int:
    from s2s.export import export

    run = Path(args.run)
    out = Path(args.out) if args.out else Path("exports") / run.name
    target = export(
        run,
        out,
        beam_size=args.beam,
        lm_run=args.lm_run,
        lm_weight=args.lm_weight,
        precision=args.precision,
        jit_compile=args.jit_compile,
    )
    _log(f"exported {run} to {target}")
    print(target)
    return 0


def cmd_bench(args) -> int:
    from s2s.bench import run_bench, table, write_results

    config = load_config(args.lang, args.config, args.overrides)
    run = Path(args.run or f"runs/{args.lang}")
    work = Path("bench") / "work" / args.lang
    results = run_bench(
        config,
        work,
        run if run.exists() else None,
        args.seconds,
        decoding=not args.train_only,
        training=not args.decode_only,
    )
    print(table(results))
    write_results(results, Path(args.out))
    _log(f"written to {args.out}")
    return 0


def cmd_compare(args) -> int:
    from s2s.compare import compare

    config = load_config(args.lang, args.config, args.overrides)
    out = Path(args.out or f"runs/compare/{args.lang}")
    frame = compare(config, out, Path(args.corpus) if args.corpus else None, log=_log)
    print(frame.to_markdown(index=False, intfmt=","))
    _log(f"written to {out / 'compare.md'} and {out / 'compare.csv'}")
    return 0


def cmd_experiments(args) -> int:
    from s2s.experiments import experiment_log

    text = experiment_log([Path(r) for r in args.runs])
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        _log(f"written to {args.out}")
    else:
        print(text, end="")
    return 0


def _compare_runs(args) -> int:
    """Paired bootstrap over several runs' test translations of the same test split."""
    import pandas as pd

    from s2s import data as data_lib
    from s2s import runs
    from s2s.config import read_yaml
    from s2s.evaluate import compare

    first = runs.RunPaths(Path(args.compare[0]))
    test = data_lib.load_eval_sets(first.data)["test"]
    sources, refs = test.sources, test.references
    systems = []
    for run in args.compare:
        paths = runs.RunPaths(Path(run))
        hyp_file, src_file = paths.eval / "test.hyp.txt", paths.eval / "test.src.txt"
        if not hyp_file.exists():
            raise FileNotFoundError(f"{hyp_file} is missing: evaluate {run} first")
        if src_file.read_text(encoding="utf-8").splitlines() != sources:
            raise SystemExit(f"{run} was tested on other sentences than {args.compare[0]}")
        systems.append((run, hyp_file.read_text(encoding="utf-8").splitlines()))
    tgt_lang = read_yaml(first.config)["data"]["tgt_lang"]
    table = compare(systems, refs, tgt_lang, args.tokenize)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))
    return 0


def cmd_plot(args) -> int:
    from s2s import plots

    if args.figure == "curves":
        fig = plots.learning_curves(Path(args.run) / "logs" / "train.csv")
    else:
        from s2s.runs import load_trained
        from s2s.translate import Translator

        config, model, src_tok, tgt_tok = load_trained(args.run)
        translator = Translator.from_config(model, src_tok, tgt_tok, config)
        source, output, weights = translator.attention(args.sentence)
        fig = plots.attention_heatmap(source, output, weights, title=args.sentence)
    _log(f"written to {plots.save(fig, args.out)}")
    return 0


def cmd_lm_train(args) -> int:
    from s2s.train_lm import side_of, train_lm
    from s2s.trainer import TrainingDiverged

    config = load_config(args.pair, args.config, args.overrides)
    config["lm"]["side"] = side_of(config, args.lang)
    run = args.run or f"runs/lm-{args.lang}"
    try:
        report = train_lm(config, run, Path(args.corpus) if args.corpus else None, log=_log)
    except TrainingDiverged as e:
        _log(f"error: {e}")
        return 1
    print(json.dumps(report))
    return 0


def _lm_lang(config: dict) -> str:
    return config["data"][f"{config['lm']['side']}_lang"]


def cmd_lm_sample(args) -> int:
    from s2s.data import normalize
    from s2s.language_model import continue_text
    from s2s.runs import load_language_model
    from s2s.vocab import EOS_ID

    config, lm, tokenizer = load_language_model(args.run)
    prefix = tokenizer.encode([normalize(args.prefix, _lm_lang(config))])[0] if args.prefix else []
    ids, scores = continue_text(
        lm, prefix, args.n, args.max_len, args.temperature, args.top_k, args.seed, args.greedy
    )
    for row, score in zip(ids.tolist(), scores, strict=True):
        pieces = prefix + (row[: row.index(EOS_ID)] if EOS_ID in row else row)
        text = tokenizer.decode([pieces])[0]
        print(f"{text}\t{score:.3f}" if args.scores else text)
    return 0


def cmd_lm_score(args) -> int:
    import math

    from s2s.data import normalize
    from s2s.language_model import sentence_log_probs
    from s2s.runs import load_language_model

    config, lm, tokenizer = load_language_model(args.run)
    lines = [line.rstrip("\r\n") for line in sys.stdin]
    ids = tokenizer.encode([normalize(line, _lm_lang(config)) for line in lines])
    print("log_prob\tperplexity\tpieces\tsentence")
    for line, seq, log_prob in zip(lines, ids, sentence_log_probs(lm, ids), strict=True):
        n = len(seq) + 1  # </s> counted
        print(f"{log_prob:.4f}\t{math.exp(-log_prob / n):.2f}\t{n}\t{line}")
    return 0


def cmd_demo(args) -> int:
    from s2s import demo

    if args.export:
        engine = demo.SavedModelEngine(args.export)
    else:
        engine = demo.RunEngine(args.run, clusters=args.clusters)
    demo.serve(engine, args.host, args.port)
    return 0


def _fusion_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lm-run", help="shallow fusion: a target-side language model run")
    parser.add_argument(
        "--lm-weight", type=float, help="log p_tm + weight * log p_lm (default: the config's)"
    )


def _jit_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        help="search with the XLA-compiled loop (faster for small batches; default: the run's "
        "search.jit_compile)",
    )


def _precision_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        choices=DECODE_PRECISIONS,
        help="float32, or train: decode in the precision the run trained in (default: the "
        "run's search.precision)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m s2s", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="prepare data, train, evaluate on test")
    _config_args(p)
    p.add_argument("--run", help="run folder (default runs/<lang>)")
    p.add_argument("--corpus", help="corpus file instead of the manifest's")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("prepare", help="run the data stage alone and report what cleaning did")
    _config_args(p)
    p.add_argument("--corpus", help="corpus file instead of the manifest's")
    p.add_argument("--report", help="write the cleaning report as JSON here")
    p.add_argument(
        "--stats",
        action="store_true",
        help="also print length percentiles, pairs lost per maximum length, vocabulary coverage",
    )
    p.add_argument("--plot", default="lengths.png", help="--stats: length histogram PNG")
    p.add_argument("--spm", help="--stats: a run's spm/ folder (default: train models now)")
    p.add_argument("--lm-run", help="a language model run: report the least likely pairs")
    p.add_argument("--least-likely", type=int, default=20, help="--lm-run: how many pairs")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("translate", help="translate stdin (or --input) line by line")
    p.add_argument("--run", default="runs/zh-en")
    p.add_argument("--input"), p.add_argument("--output")
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
    _fusion_args(p)
    _precision_arg(p)
    _jit_arg(p)
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("evaluate", help="score a run's split, or a hypothesis file")
    p.add_argument("--run", default="runs/zh-en")
    p.add_argument(
        "--split", default="test", help="dev, test, another named test set, or all (test sets)"
    )
    p.add_argument("--beam", type=int)
    p.add_argument("--hyp", help="score this file instead of translating")
    p.add_argument(
        "--ref", nargs="+", default=[], help="reference file(s), one line per hypothesis"
    )
    p.add_argument("--tgt-lang", help="target language of --hyp (picks the BLEU tokenizer)")
    p.add_argument("--tokenize", help="sacreBLEU tokenizer (default: zh for Chinese, else 13a)")
    p.add_argument(
        "--compare",
        nargs="+",
        metavar="RUN",
        help="compare runs' test translations (paired bootstrap; the first is the baseline)",
    )
    _fusion_args(p)
    _precision_arg(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="write a string-in, string-out SavedModel for serving")
    p.add_argument("--run", default="runs/zh-en")
    p.add_argument("--out", help="versioned export folder (default exports/<run name>)")
    p.add_argument("--beam", type=int, help="beam size; default from the run's config")
    _fusion_args(p)
    _precision_arg(p)
    _jit_arg(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("bench", help="measure training, input, search and serving speed")
    _config_args(p)
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

    p = sub.add_parser("compare", help="train every cell x attention for the same minutes")
    _config_args(p)
    p.add_argument("--out", help="folder of the grid's runs and tables (runs/compare/<lang>)")
    p.add_argument("--corpus", help="corpus file instead of the manifest's")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("plot", help="save a figure as PNG: learning curves or attention")
    p.add_argument("figure", choices=["curves", "attention"])
    p.add_argument("--run", default="runs/zh-en")
    p.add_argument("--sentence", default="我们走吧。", help="source sentence (attention)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(func=cmd_plot)

    lm = sub.add_parser("lm", help="recurrent language models: train, sample, score")
    lm_sub = lm.add_subparsers(dest="lm_command", required=True)
    p = lm_sub.add_parser("train", help="train a language model on one side of a pair's corpus")
    p.add_argument("--lang", required=True, help="the side's language, e.g. en")
    p.add_argument(
        "--pair", default="zh-en", help="the pair whose corpus to read (data/<pair>.yaml)"
    )
    p.add_argument("--config", help="a config file instead of data/<pair>.yaml")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE"
    )
    p.add_argument("--run", help="run folder (default runs/lm-<lang>)")
    p.add_argument("--corpus", help="corpus file instead of the manifest's")
    p.set_defaults(func=cmd_lm_train)
    p = lm_sub.add_parser("sample", help="new sentences from a language model")
    p.add_argument("--run", required=True)
    p.add_argument("--n", type=int, default=10, help="how many sentences")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0, help="sample from the k best pieces (0: all)")
    p.add_argument("--seed", type=int, default=0, help="the same seed, the same sentences")
    p.add_argument("--prefix", default="", help="text every sentence continues")
    p.add_argument("--max-len", type=int, default=50, help="pieces at most (then </s>)")
    p.add_argument("--greedy", action="store_true", help="the most likely continuation")
    p.add_argument("--scores", action="store_true", help="also print each sentence's log P")
    p.set_defaults(func=cmd_lm_sample)
    p = lm_sub.add_parser("score", help="log-probability and perplexity of each stdin line")
    p.add_argument("--run", required=True)
    p.set_defaults(func=cmd_lm_score)

    p = sub.add_parser("demo", help="a translation page over a run (or a SavedModel)")
    p.add_argument("--run", default="runs/zh-en")
    p.add_argument("--export", help="an exported SavedModel version folder instead of a run")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--clusters", type=int, default=8, help="k-means clusters of encoder states")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("experiments", help="the experiment log table from run folders")
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--out", help="write the Markdown here (default: stdout)")
    p.set_defaults(func=cmd_experiments)
    return parser


def main(argv: list[str] | None = None) -> int:
    _utf8_stdio()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError, CorpusError) as e:
        _log(f"error: {e}")
        return 2
