"""``s2s`` (or ``python -m s2s``): train, translate, evaluate, serve and inspect translation
models. One module per command group; each registers its commands with ``add_parsers``."""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from s2s.cli import analysis, evaluate, lm, run, serve, translate
from s2s.cli.common import log
from s2s.config import ConfigError
from s2s.config.run_folder import RunError
from s2s.data.errors import CorpusError

COMMAND_GROUPS = (run, translate, evaluate, serve, lm, analysis)


def _utf8_stdio() -> None:
    """Text in and out is UTF-8 whatever the caller's locale (``make train LANG=zh-en`` ...)."""
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(
                encoding="utf-8", errors="replace" if stream is sys.stdin else "strict"
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2s", description="Neural machine translation with Keras 3 recurrent models."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_parsers(sub)
    parser.set_defaults(commands=tuple(sub.choices))
    return parser


def commands() -> tuple[str, ...]:
    """The names of the ``s2s`` commands."""
    return build_parser().get_default("commands")


def main(argv: list[str] | None = None) -> int:
    _utf8_stdio()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, CorpusError, RunError, OSError) as e:
        # What a user can cause (a bad setting, file, run folder; a full disk): one line.
        log(f"error: {e}")
        return 2
    except KeyboardInterrupt:
        log("interrupted")
        return 130
