"""What a prepared corpus looks like: lengths, what each maximum length costs, vocabulary coverage.

``s2s prepare --lang zh-en --stats [--plot lengths.png]`` prints these tables and saves a length
histogram, from the run's data stage: a seeded sample of its training pairs (the whole of a
small corpus), its dev and test sets, and its SentencePiece models. Lengths are counted in
characters (what ``data.max_chars`` limits) and in pieces (what the largest bucket limits).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from s2s.analysis import plots
from s2s.data.prepared import sample_train
from s2s.data.stage import PreparedData
from s2s.text.tokenizer import Tokenizer
from s2s.text.vocab import UNK_ID

PERCENTILES = (50, 90, 95, 99, 100)
CHAR_LIMITS = (25, 50, 75, 100, 150, 200)
PIECE_LIMITS = (16, 24, 32, 48, 64, 96)


def length_percentiles(lengths: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per length series (e.g. ``src chars``), one column per percentile."""
    rows = {
        name: {f"p{p}": int(np.percentile(values, p)) for p in PERCENTILES}
        for name, values in lengths.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def share_lost(src: np.ndarray, tgt: np.ndarray, limits) -> pd.DataFrame:
    """Share of pairs lost if pairs with a side longer than each limit were dropped."""
    longer = [float(np.mean((src > n) | (tgt > n))) for n in limits]
    return pd.DataFrame({"max length": list(limits), "pairs lost": longer})


def piece_coverage(tokenizer: Tokenizer, sentences: list[str]) -> dict:
    """How much of ``sentences`` the vocabulary covers: unknown pieces and characters."""
    ids = tokenizer.encode(sentences)
    pieces = sum(len(s) for s in ids)
    unknown = sum(s.count(UNK_ID) for s in ids)
    sentences_with_unk = sum(UNK_ID in s for s in ids)
    return {
        "pieces": pieces,
        "unknown pieces": unknown / max(pieces, 1),
        "sentences with an unknown piece": sentences_with_unk / max(len(ids), 1),
    }


def corpus_stats(data: PreparedData, folder: Path, config: dict, sample: int = 200_000) -> dict:
    """Every table ``prepare --stats`` prints, as DataFrames, plus the raw lengths for plots:
    lengths of up to ``sample`` training pairs (seeded by ``data.seed``) and of every dev/test
    pair, and the SentencePiece models' coverage of the distinct dev and test sentences."""
    train_src, train_tgt = sample_train(folder, sample, config["data"]["seed"])
    sides = {"src": list(train_src), "tgt": list(train_tgt)}
    held_out: dict[str, list[str]] = {"src": [], "tgt": []}
    for eval_set in data.sets.values():
        for source, refs in zip(eval_set.sources, eval_set.references, strict=True):
            sides["src"] += [source] * len(refs)
            sides["tgt"] += refs
            held_out["src"].append(source)
            held_out["tgt"] += refs
    tokenizers = {"src": data.src_tok, "tgt": data.tgt_tok}
    chars = {side: np.array([len(t) for t in texts]) for side, texts in sides.items()}
    pieces = {
        side: np.array([len(ids) for ids in tokenizers[side].encode(texts)])
        for side, texts in sides.items()
    }
    coverage = pd.DataFrame(
        {
            side: piece_coverage(tokenizers[side], list(dict.fromkeys(held_out[side])))
            for side in ("src", "tgt")
        }
    )
    lengths = {f"{side} chars": chars[side] for side in chars}
    lengths.update({f"{side} pieces": pieces[side] for side in pieces})
    return {
        "percentiles": length_percentiles(lengths),
        "lost_by_chars": share_lost(chars["src"], chars["tgt"], CHAR_LIMITS),
        "lost_by_pieces": share_lost(pieces["src"], pieces["tgt"], PIECE_LIMITS),
        "coverage": coverage,
        "lengths": lengths,
        "pairs": len(chars["src"]),
    }


def render(stats: dict, config: dict) -> str:
    """The tables as text for the terminal (shares as percentages)."""

    def lost(frame: pd.DataFrame) -> str:
        frame = frame.assign(**{"pairs lost": frame["pairs lost"] * 100})
        return frame.rename(columns={"pairs lost": "pairs lost (%)"}).to_markdown(
            index=False, floatfmt=(".0f", ".2f")
        )

    coverage = stats["coverage"].T
    coverage = pd.DataFrame(
        {
            "pieces": coverage["pieces"].map("{:,.0f}".format),
            "unknown pieces (%)": (coverage["unknown pieces"] * 100).map("{:.2f}".format),
            "sentences with <unk> (%)": (coverage["sentences with an unknown piece"] * 100).map(
                "{:.2f}".format
            ),
        }
    )
    return "\n\n".join(
        [
            f"lengths of {stats['pairs']:,} kept pairs (a sample of train, and dev and test; "
            "percentiles)\n" + stats["percentiles"].to_markdown(),
            f"at each maximum length in characters (data.max_chars is "
            f"{config['data']['max_chars']}; longer pairs are already gone)\n"
            + lost(stats["lost_by_chars"]),
            "at each maximum length in pieces (the largest bucket holds "
            f"{config['train']['bucket_boundaries'][-1] - 1})\n" + lost(stats["lost_by_pieces"]),
            "SentencePiece coverage of the distinct dev and test sentences\n"
            + coverage.to_markdown(
                colalign=("left", "right", "right", "right"), disable_numparse=True
            ),
        ]
    )


def length_histogram(
    lengths: dict[str, np.ndarray], path: str | Path, langs: tuple[str, str] = ("src", "tgt")
) -> Path:
    """Histograms of characters and pieces per sentence, source and target, as a PNG."""
    fig, axes = plots.plt.subplots(1, 2, figsize=(11, 4))
    for ax, unit in zip(axes, ("chars", "pieces"), strict=True):
        for side, lang in zip(("src", "tgt"), langs, strict=True):
            values = lengths[f"{side} {unit}"]
            bins = np.arange(0, np.percentile(values, 99.5) + 2)
            ax.hist(values, bins=bins, alpha=0.6, label=f"{lang} ({side})")
        ax.set_xlabel(f"{unit} per sentence")
        ax.set_ylabel("sentences")
        ax.legend()
    fig.tight_layout()
    return plots.save(fig, path)
