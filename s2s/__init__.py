"""s2s: neural machine translation with Keras 3 recurrent encoder-decoder models."""

__version__ = "0.1.0"
