"""``s2s lm train|sample|score``: recurrent language models of one side of a pair."""

from __future__ import annotations

import json
import math
import sys

from s2s.cli.common import config_args, config_of, train_run


def add_parsers(sub) -> None:
    lm = sub.add_parser("lm", help="recurrent language models: train, sample, score")
    lm_sub = lm.add_subparsers(dest="lm_command", required=True)
    p = lm_sub.add_parser(
        "train", help="train a language model on one side of a pair's corpus (or of a run's)"
    )
    config_args(p, lang_help="the language pair whose corpus to read, e.g. zh-en (its recipe)")
    p.add_argument(
        "--side", required=True, help="the side to model: a language of the pair, src or tgt"
    )
    p.add_argument("--run", help="run folder (default runs/lm-<side's language>)")
    p.add_argument("--corpus", help="a TSV corpus file instead of the configured corpus")
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


def cmd_lm_train(args) -> int:
    from s2s.training.tasks import lm_side

    config = config_of(args)
    config["lm"]["side"] = lm_side(config, args.side)
    report = train_run(config, args.run or f"runs/lm-{_lm_lang(config)}", args.corpus)
    if report is None:
        return 1
    print(json.dumps(report))
    return 0


def _lm_lang(config: dict) -> str:
    return config["data"][f"{config['lm']['side']}_lang"]


def cmd_lm_sample(args) -> int:
    from s2s.decoding.fusion import continue_text
    from s2s.models.loading import load_language_model
    from s2s.text.normalize import normalize
    from s2s.text.vocab import EOS_ID

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
    from s2s.models.language_model import sentence_log_probs
    from s2s.models.loading import load_language_model
    from s2s.text.normalize import normalize

    config, lm, tokenizer = load_language_model(args.run)
    lines = [line.rstrip("\r\n") for line in sys.stdin]
    ids = tokenizer.encode([normalize(line, _lm_lang(config)) for line in lines])
    print("log_prob\tperplexity\tpieces\tsentence")
    for line, seq, log_prob in zip(lines, ids, sentence_log_probs(lm, ids), strict=True):
        n = len(seq) + 1  # </s> counted
        print(f"{log_prob:.4f}\t{math.exp(-log_prob / n):.2f}\t{n}\t{line}")
    return 0
