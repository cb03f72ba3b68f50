"""Every private Keras name s2s relies on, in one place.

Keras has no public way to do these; each is checked by ``tests/models/test_keras_internals.py``,
which fails naming the installed Keras version when an upgrade moves or removes one. Replace an
entry here with public API as soon as Keras offers one.
"""

from __future__ import annotations

import keras

# The Keras release these were last checked against (requirements.txt pins it).
CHECKED_WITH = "3.15.1"


class KerasInternalsChanged(RuntimeError):
    """A private Keras name this module relies on is gone: review the code that uses it."""


def apply_gradients_as_given(optimizer) -> None:
    """Stop ``optimizer`` from summing the gradients over replicas inside ``apply``.

    Keras's TensorFlow optimizer all-reduces the gradients it is given (the private
    ``_all_reduce_sum_gradients``, called from ``_backend_update_step``). The shared train step
    (:meth:`s2s.models.base.SequenceModel.train_step`) has summed them already, because clipping
    must see the global gradient's norm; letting the optimizer sum again would double each
    step's traffic (and the step would have to divide by the replica count to undo it). Outside
    a replica context Keras's reduction does nothing, so one device is unaffected.
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer wraps one
    if not callable(getattr(inner, "_all_reduce_sum_gradients", None)):
        raise KerasInternalsChanged(
            f"Keras {keras.version()}: {type(inner).__name__} has no _all_reduce_sum_gradients "
            f"(checked with Keras {CHECKED_WITH}); this Keras reduces gradients elsewhere: "
            "review s2s.models.base.SequenceModel.train_step before training"
        )
    inner._all_reduce_sum_gradients = list  # [(grad, var), ...] -> the same pairs
