"""The data layer's one error: input that cannot be used at all, named with its file and line."""


class CorpusError(ValueError):
    """A corpus, a dev/test set or a data folder that cannot be read or used."""
