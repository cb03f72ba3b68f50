"""s2s: neural machine translation with Keras 3 recurrent encoder-decoder models.

    import s2s

    model = s2s.load("runs/zh-en")          # a trained run, or an exported SavedModel
    model.translate(["我们走吧。"])           # ["Let's go."]

See :mod:`s2s.api` (``load``, ``train``, ``TranslationModel``); ``s2s --help`` for the command
line.
"""

__version__ = "0.1.0"

_API = ("Candidate", "TranslationModel", "load", "train")


def __getattr__(name: str):
    if name in _API:  # imported on first use: ``import s2s`` stays quick
        from s2s import api

        return getattr(api, name)
    raise AttributeError(f"module 's2s' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
