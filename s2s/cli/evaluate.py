"""``s2s evaluate`` (a run's test sets, or a file of hypotheses) and ``s2s significance``
(paired bootstrap over several runs' translations of the same set)."""

from __future__ import annotations

import re
from pathlib import Path

from s2s.cli.common import fusion_args, load_model, log, model_args, precision_arg, runs_of
from s2s.text.normalize import HAN


def add_parsers(sub) -> None:
    p = sub.add_parser("evaluate", help="score a run's test sets, or a hypothesis file")
    model_args(p)
    p.add_argument(
        "--split", default="test", help="dev, test, another named test set, or all (test sets)"
    )
    p.add_argument("--beam", type=int)
    p.add_argument("--hyp", help="score this file instead of translating")
    p.add_argument(
        "--ref", nargs="+", default=[], help="reference file(s), one line per hypothesis"
    )
    p.add_argument(
        "--tgt-lang",
        help="target language of --hyp (picks the BLEU tokenizer; default: zh when most "
        "hypotheses hold Chinese characters, else en, and said so)",
    )
    p.add_argument("--tokenize", help="sacreBLEU tokenizer (default: zh for Chinese, else 13a)")
    fusion_args(p)
    precision_arg(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "significance",
        help="paired bootstrap over several runs' translations of the same set (the first "
        "run is the baseline)",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders, evaluated already")
    p.add_argument("--split", help="the set (default: the first run's test set)")
    p.add_argument("--tokenize", help="sacreBLEU tokenizer (default: zh for Chinese, else 13a)")
    p.set_defaults(func=cmd_significance)


def cmd_evaluate(args) -> int:
    if args.hyp:
        return _score_files(args)
    from s2s.config.run_folder import RunPaths, read_state
    from s2s.data.prepared import load_eval_sets
    from s2s.decoding.translator import Translator
    from s2s.evaluation.reports import evaluate_set

    first, others, checkpoints = runs_of(args)
    config, model, src_tok, tgt_tok = load_model(args, args.precision)
    if args.tokenize:
        config["eval"]["tokenize"] = args.tokenize
    for key in ("lm_run", "lm_weight"):
        if getattr(args, key) is not None:
            config["search"][key] = getattr(args, key)
    paths = RunPaths(Path(first))
    sets = load_eval_sets(paths.data)
    names = [n for n in sets if n != "dev"] if args.split == "all" else [args.split]
    for name in names:
        if name not in sets:
            raise SystemExit(f"{first} has no set {name!r} (it has: {', '.join(sets)})")
    state = read_state(paths)
    translator = Translator.from_config(model, src_tok, tgt_tok, config, beam_size=args.beam)
    # An ensemble's reports go beside the first run's own, not over them.
    folder = paths.eval / "ensemble" if others or checkpoints else paths.eval
    about = None
    if others or checkpoints:
        members = [f"{first} (last {checkpoints} checkpoints)" if checkpoints else first]
        about = {"members": [*members, *others]}
    for name in names:
        evaluate_set(translator, sets[name], config, folder, state, log, about)
    return 0


def _score_files(args) -> int:
    """``--hyp`` against ``--ref`` files, line by line."""
    from s2s.evaluation.metrics import score

    hyps = Path(args.hyp).read_text(encoding="utf-8").splitlines()
    ref_files = [Path(r).read_text(encoding="utf-8").splitlines() for r in args.ref]
    if not ref_files:
        raise SystemExit("--hyp needs --ref: one or more reference files")
    for path, refs in zip(args.ref, ref_files, strict=True):
        if len(refs) != len(hyps):
            raise SystemExit(f"{path}: {len(refs)} lines, but {args.hyp} has {len(hyps)}")
    refs = [[r[i] for r in ref_files if r[i]] for i in range(len(hyps))]
    lang = args.tgt_lang or _guess_language(hyps)
    print(score(hyps, refs, lang, args.tokenize).summary())
    return 0


def _guess_language(hyps: list[str]) -> str:
    """``zh`` when most non-empty hypotheses hold a Chinese character, else ``en``; said so."""
    lines = [h for h in hyps if h.strip()]
    chinese = sum(bool(re.search(HAN, h)) for h in lines)
    lang = "zh" if lines and chinese > len(lines) / 2 else "en"
    log(
        f"--tgt-lang not given: {chinese:,} of {len(lines):,} hypotheses hold Chinese characters, "
        f"so they are scored as {lang} (pass --tgt-lang to choose)"
    )
    return lang


def cmd_significance(args) -> int:
    import pandas as pd

    from s2s.config import read_yaml
    from s2s.config.run_folder import RunPaths
    from s2s.data.prepared import load_eval_sets
    from s2s.data.sets import primary_test_set
    from s2s.evaluation.significance import paired_bootstrap

    first = RunPaths(Path(args.runs[0]))
    sets = load_eval_sets(first.data)
    name = args.split or primary_test_set(sets)
    if name not in sets:
        raise SystemExit(f"{args.runs[0]} has no set {name!r} (it has: {', '.join(sets)})")
    eval_set = sets[name]
    systems = []
    for run in args.runs:
        paths = RunPaths(Path(run))
        hyp_file, src_file = paths.eval / f"{name}.hyp.txt", paths.eval / f"{name}.src.txt"
        if not hyp_file.exists() or not src_file.exists():
            raise SystemExit(f"{hyp_file} is missing: run s2s evaluate --run {run} first")
        if src_file.read_text(encoding="utf-8").splitlines() != eval_set.sources:
            raise SystemExit(f"{run} translated other {name} sentences than {args.runs[0]}")
        systems.append((run, hyp_file.read_text(encoding="utf-8").splitlines()))
    tgt_lang = read_yaml(first.config)["data"]["tgt_lang"]
    table = paired_bootstrap(
        systems, eval_set.references, tgt_lang, args.tokenize, lowercase=eval_set.lowercase
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))
    return 0
