"""Every enumerated config value, in one place: the components validate their own arguments
against these lists, and :func:`s2s.config.validate` checks a whole config against them before
any work starts. A module of its own, with no imports, so that both can use it without a circle.
"""

CELLS = ("lstm", "gru", "mgu", "rnn")
ATTENTION = ("dot", "general", "additive")
BRIDGES = ("final", "projection", "zeros")
LR_SCHEDULES = ("constant", "inverse_sqrt", "plateau", "budget")
STRATEGIES = ("one_device", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
STOPPING = ("exact", "early")
DECODE_PRECISIONS = ("float32", "train")
SCRIPTS = ("keep", "simplified")
SPM_MODEL_TYPES = ("unigram", "bpe", "char", "word")
SIDES = (None, "src", "tgt")

# The config key each list governs; a list-valued key (grid.cells) has each item checked.
BY_KEY = {
    "model.cell": CELLS,
    "model.attention": ATTENTION,
    "model.bridge": BRIDGES,
    "train.lr_schedule": LR_SCHEDULES,
    "train.distribute": STRATEGIES,
    "train.precision": ("auto", *PRECISIONS),
    "train.init_reset": ("optimizer", "nothing"),
    "train.init_vocab": ("parent", "update"),
    "search.stopping": STOPPING,
    "search.precision": DECODE_PRECISIONS,
    "data.chinese_script": SCRIPTS,
    "tokenizer.src.model_type": SPM_MODEL_TYPES,
    "tokenizer.tgt.model_type": SPM_MODEL_TYPES,
    "lm.side": SIDES,
    "grid.cells": CELLS,
    "grid.attention": ATTENTION,
}

# Keys of the data/tokenizer/model sections that change how fast a run goes, never what it
# produces: a run may resume, and a data stage be reused, with other values.
SPEED_ONLY = {"data": ("workers",)}
