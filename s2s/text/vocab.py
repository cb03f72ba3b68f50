"""The special ids every vocabulary of the project shares (SentencePiece is trained with them).

A module of its own so that code needing a constant (model, search, pipeline, export) does not
import SentencePiece and pandas with it.
"""

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
