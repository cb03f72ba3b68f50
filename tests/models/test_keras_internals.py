"""The private Keras names s2s relies on (:mod:`s2s.models.keras_internals`) still do what it
needs; when a Keras upgrade moves one, these fail naming the installed version."""

from __future__ import annotations

import inspect

import keras
import pytest

from s2s.models.keras_internals import (
    CHECKED_WITH,
    KerasInternalsChanged,
    apply_gradients_as_given,
)


def test_the_optimizer_still_sums_gradients_where_s2s_turns_it_off():
    optimizer = keras.optimizers.Adam()
    update = inspect.getsource(type(optimizer)._backend_update_step)
    assert "self._all_reduce_sum_gradients(" in update, (
        f"Keras {keras.version()} (s2s checked {CHECKED_WITH}) no longer sums gradients in "
        "_all_reduce_sum_gradients: review s2s.models.keras_internals.apply_gradients_as_given"
    )
    apply_gradients_as_given(optimizer)
    pairs = [(1.0, "a"), (2.0, "b")]
    assert optimizer._all_reduce_sum_gradients(pairs) == pairs


def test_the_loss_scale_optimizer_is_reached_through_its_inner_optimizer():
    scaled = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())
    apply_gradients_as_given(scaled)
    assert scaled.inner_optimizer._all_reduce_sum_gradients([(1, 2)]) == [(1, 2)]


def test_a_missing_name_is_refused_naming_the_keras_version():
    class Elsewhere:  # an optimizer of a Keras that reduces gradients in another place
        pass

    with pytest.raises(KerasInternalsChanged, match=f"Keras {keras.version()}"):
        apply_gradients_as_given(Elsewhere())
