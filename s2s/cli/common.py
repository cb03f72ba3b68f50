"""What every command shares: logging to stderr, the config arguments, search arguments."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from s2s.config import ConfigError, load_config
from s2s.config.choices import DECODE_PRECISIONS


def log(message: str) -> None:
    """A line for the person at the terminal (stderr: stdout is kept for results)."""
    print(message, file=sys.stderr, flush=True)


def config_args(parser: argparse.ArgumentParser, lang_help: str | None = None) -> None:
    """``--lang``, ``--config`` and repeatable ``--set section.key=value``."""
    parser.add_argument(
        "--lang",
        default="zh-en",
        help=lang_help or "language pair, e.g. zh-en (its recipe: data/<pair>.yaml)",
    )
    parser.add_argument("--config", help="a config file instead of the pair's recipe")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config key (repeatable)",
    )


def config_of(args) -> dict:
    """The config the arguments name, checked (unknown keys and bad values are refused)."""
    return load_config(args.lang, args.config, args.overrides)


def train_run(config: dict, run: str, corpus: str | None) -> dict | None:
    """Train (or resume) the run; its test report, or None when training diverged (said)."""
    from s2s.training.runner import TrainingDiverged, train

    try:
        return train(config, run, Path(corpus) if corpus else None, log=log)
    except TrainingDiverged as e:
        log(f"error: {e}")
        return None


def model_args(parser: argparse.ArgumentParser) -> None:
    """``--run`` (repeatable: an ensemble) and ``--checkpoints last:N``."""
    parser.add_argument(
        "--run",
        action="append",
        help="run folder (default runs/zh-en); repeat for an ensemble, which searches with the "
        "first run's settings and the mean of every run's log-probabilities",
    )
    parser.add_argument(
        "--checkpoints",
        metavar="last:N",
        help="an ensemble of the first run's last N kept checkpoints (and the other runs)",
    )


def runs_of(args) -> tuple[str, list[str], int]:
    """The first run, the other runs and the number of checkpoints of ``model_args``."""
    runs = args.run or ["runs/zh-en"]
    checkpoints = 0
    if args.checkpoints:
        kind, _, count = args.checkpoints.partition(":")
        if kind != "last" or not count.isdigit() or int(count) < 1:
            raise ConfigError(f"--checkpoints {args.checkpoints}: expected last:N, N >= 1")
        checkpoints = int(count)
    return runs[0], runs[1:], checkpoints


def load_model(args, precision: str | None = None):
    """``(config, model, src_tok, tgt_tok)`` of ``model_args``: a run, or an ensemble."""
    from s2s.decoding.ensemble import load_ensemble

    first, others, checkpoints = runs_of(args)
    return load_ensemble(first, others, checkpoints, precision)


def fusion_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lm-run", help="shallow fusion: a target-side language model run")
    parser.add_argument(
        "--lm-weight", type=float, help="log p_tm + weight * log p_lm (default: the config's)"
    )


def jit_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        help="search with the XLA-compiled loop (faster for small batches; default: the run's "
        "search.jit_compile)",
    )


def precision_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        choices=DECODE_PRECISIONS,
        help="float32, or train: decode in the precision the run trained in (default: the "
        "run's search.precision)",
    )
