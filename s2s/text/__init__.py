"""Text: normalisation (:mod:`.normalize`), SentencePiece models (:mod:`.tokenizer`), and the
special ids every vocabulary shares (:mod:`.vocab`)."""
