"""The experiment log: one Markdown table row per run folder, made from what the run wrote.

``s2s experiments runs/* --out docs/experiments.md``. Each row shows how the run's
config differs from the defaults of its language pair, how far it got, its speed and its
scores (dev: best epoch by dev BLEU; test: once, with the run's search settings).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from s2s.config import ConfigError, load_config, read_yaml
from s2s.config.run_folder import RunPaths, read_state


def flatten(config: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# What the code did before these settings existed (for run folders older than the key).
BEFORE_THE_KEY = {
    "model.attention_scaled": False,
    "model.input_feeding": False,
    "model.bridge": "final",
    "model.tie_embeddings": False,
    "model.word_dropout": 0.0,
    "train.lr_schedule": "constant",
    "train.average_last": 0,
    "train.precision": "float32",
    "search.stopping": "early",
    "search.tune_alpha": [],
    "search.tune_beam": [],
}


def config_diff(config: dict) -> str:
    """``key=value`` for every setting that differs from the pair's defaults."""
    pair = f"{config['data']['src_lang']}-{config['data']['tgt_lang']}"
    try:
        base = flatten(load_config(pair))
    except ConfigError:  # a pair without a config file: every setting is shown
        base = {}
    ours = flatten(config)
    changed = [f"{k}={v}" for k, v in ours.items() if base.get(k, object()) != v]
    # A run older than a setting ran with what the code did before the setting existed.
    changed += [
        f"{k}={BEFORE_THE_KEY[k]} (before the key)"
        for k in base
        if k not in ours and k in BEFORE_THE_KEY and BEFORE_THE_KEY[k] != base[k]
    ]
    return ", ".join(changed) or "defaults"


def summarize(run_dir: Path) -> dict | None:
    """One row for ``run_dir``, or None when it is not a run folder."""
    paths = RunPaths(Path(run_dir))
    if not paths.config.exists():
        return None
    config = read_yaml(paths.config)
    state = read_state(paths)
    row = {
        "run": str(run_dir),
        "pair": f"{config['data']['src_lang']}-{config['data']['tgt_lang']}",
        "changes": config_diff(config),
        "epochs": None if state.get("epoch") is None else round(state["epoch"], 2),
        "best_epoch": _best_epoch(state),
        "train_min": round(state.get("elapsed_s", 0.0) / 60, 1),
        "tok_s": None,
        "dev_bleu": None if state["best_objective"] is None else round(state["best_objective"], 2),
        "test_bleu": None,
        "test_chrf": None,
    }
    log_path = paths.logs / "train.csv"
    if log_path.exists():
        log = pd.read_csv(log_path)
        if len(log) > 1:  # the first interval includes compilation
            row["tok_s"] = round(float(log["tok_s"].iloc[1:].median()))
    report = paths.eval / "test.json"
    if report.exists():
        scores = json.loads(report.read_text(encoding="utf-8"))
        row["test_bleu"], row["test_chrf"] = scores["bleu"], scores["chrf"]
        averaged = scores.get("averaged") or {}
        if averaged.get("used"):
            row["changes"] += f" (averaged {len(averaged['steps'])} checkpoints)"
            dev = averaged.get("dev", {})  # runs before language models shared the runner: dev_bleu
            row["dev_bleu"] = round(dev.get("val_bleu", averaged.get("dev_bleu")), 2)
    if state.get("tuned"):
        row["changes"] += f" ({_tuned(state['tuned'])} chosen on dev)"
    return row


def _tuned(tuned: dict) -> str:
    """What a run chose on dev: ``alpha 1`` (runs before tune_beam) or ``beam 8, alpha 0.8``."""
    alpha = f"alpha {tuned['alpha']:g}"
    return f"beam {tuned['beam_size']}, {alpha}" if "beam_size" in tuned else alpha


def _best_epoch(state: dict) -> float | None:
    """The epoch (passes over the data, fractional) at the best dev BLEU."""
    if state.get("best_step") is None or not state.get("step"):
        return None
    return round(state["best_step"] / state["step"] * state["epoch"], 2)


def markdown(rows: list[dict]) -> str:
    columns = [
        ("run", "run"),
        ("pair", "pair"),
        ("changes", "config vs. defaults"),
        ("epochs", "epochs"),
        ("best_epoch", "best"),
        ("train_min", "train min"),
        ("tok_s", "tgt tok/s"),
        ("dev_bleu", "dev BLEU"),
        ("test_bleu", "test BLEU"),
        ("test_chrf", "test chrF"),
    ]
    lines = [
        "| " + " | ".join(title for _, title in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        cells = ["" if row[key] is None else str(row[key]) for key, _ in columns]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def experiment_log(run_dirs: list[Path]) -> str:
    rows = [row for row in (summarize(d) for d in run_dirs) if row]
    header = (
        "# Experiment log\n\n"
        "Made by `python -m s2s experiments` from the run folders (do not edit by hand). "
        "Dev BLEU is greedy on the dev split (the best epoch, or the average of the last "
        "epochs when that was better and used); test BLEU is beam search with the run's "
        "settings, sacreBLEU, multi-reference.\n\n"
    )
    return header + markdown(rows)
