"""How text is normalised before anything reads it: training pairs, dev/test sets, input to
translate, and (as the same tables in TensorFlow ops) the exported SavedModel.

NFKC, control characters dropped, spaces collapsed; Chinese keeps its full-width punctuation,
which NFKC (and SentencePiece's default ``nmt_nfkc`` rule) would turn into ASCII, and may have
its traditional characters converted to simplified ones.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Full-width punctuation that Chinese text uses and NFKC would turn into ASCII.
CJK_PUNCTUATION = "，！？：；（）"
CJK_PUNCT_RUN = re.compile(f"([{CJK_PUNCTUATION}]+)")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
SPACES = re.compile(r"\s+")
HAN = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"
HAN_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))


def normalize(text: str, lang: str, script: str = "keep") -> str:
    """NFKC, control characters dropped, spaces collapsed; Chinese keeps full-width punctuation.

    ``script="simplified"`` also converts traditional Chinese characters to simplified ones
    (Chinese text only), character by character with OpenCC's table (see :func:`simplified`).
    """
    text = CONTROL.sub("", text)
    if lang == "zh":
        parts = CJK_PUNCT_RUN.split(text)
        text = "".join(
            p if i % 2 else unicodedata.normalize("NFKC", p) for i, p in enumerate(parts)
        )
        if script == "simplified":
            text = text.translate(simplified())
    else:
        text = unicodedata.normalize("NFKC", text)
    return SPACES.sub(" ", text).strip()


@functools.cache
def simplified() -> dict[int, str]:
    """Traditional -> simplified Chinese, one character at a time (a ``str.translate`` table).

    Built from OpenCC's ``t2s`` conversion (the official OpenCC package, maintained, with
    wheels for this Python). Character by character rather than OpenCC's phrase-level
    conversion, so that the same table can be written into the SentencePiece models and the
    exported model normalises input exactly as Python does; phrases whose simplified form
    depends on context (a few hundred, e.g. 乾 in 乾隆) keep the common reading.
    """
    import opencc

    chars = [chr(cp) for low, high in HAN_RANGES for cp in range(low, high + 1)]
    converted = opencc.OpenCC("t2s").convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):
        raise RuntimeError("OpenCC changed the number of lines of the character list")
    return {ord(c): s for c, s in zip(chars, converted, strict=True) if s != c}


def normalization_rules(lang: str, script: str = "keep") -> str:
    """:func:`normalize` as SentencePiece rules (TSV: code points -> code points, in hex).

    Trained into each SentencePiece model, so a tokenizer normalises raw text exactly like the
    Python pipeline does, also where no Python runs (the exported SavedModel). NUL cannot be
    expressed as a rule; every other character that :func:`normalize` changes is listed.
    """
    keep = set(CJK_PUNCTUATION) if lang == "zh" else set()
    to_simplified = simplified() if lang == "zh" and script == "simplified" else {}
    rows = []
    for cp in range(1, 0x110000):
        char = chr(cp)
        if 0xD800 <= cp <= 0xDFFF or char in keep:
            continue
        if CONTROL.match(char):
            rows.append(f"{cp:X}\t")  # removed
            continue
        target = unicodedata.normalize("NFKC", char).translate(to_simplified)
        target = " " if SPACES.fullmatch(target) else target
        if target != char:
            rows.append(f"{cp:X}\t" + " ".join(f"{ord(c):X}" for c in target))
    return "\n".join(rows) + "\n"
