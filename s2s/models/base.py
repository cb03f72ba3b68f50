"""What every s2s model shares in training: teacher-forced batches of the pipeline
``((src [B,S], tgt_in [B,T]), tgt_out [B,T])``, the masked, label-smoothed sequence loss
(:mod:`s2s.models.loss`), global-norm clipping, loss scaling under ``mixed_float16``, gradients
summed across replicas, and the trackers the training loop logs (loss, nll, grad_norm, tokens).

A translation model (:class:`~s2s.models.seq2seq.Seq2Seq`) and a language model
(:class:`~s2s.models.language_model.RecurrentLM`) differ only in :meth:`SequenceModel.logits_for`:
what they read of a batch.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from s2s.models.keras_internals import apply_gradients_as_given
from s2s.models.loss import sequence_loss


class SequenceModel(keras.Model):
    """A Keras model trained token by token on teacher-forced batches (see the module)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.label_smoothing = 0.0
        self.clipnorm: float | None = None
        self.sequence_loss = sequence_loss
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.nll_tracker = keras.metrics.Mean(name="nll")
        self.grad_norm_tracker = keras.metrics.Mean(name="grad_norm")
        self.tokens_tracker = keras.metrics.Sum(name="tokens")

    def logits_for(self, src, tgt_in, training=False):
        """Teacher-forced logits ``[B, T, V]`` of a batch's ``src [B, S]`` and ``tgt_in [B, T]``."""
        raise NotImplementedError

    def compile(
        self,
        optimizer,
        label_smoothing: float = 0.0,
        clipnorm: float | None = None,
        sequence_loss=sequence_loss,
        **kwargs,
    ):
        """``sequence_loss(logits, targets, label_smoothing) -> (loss, nll, tokens)`` (see
        :mod:`s2s.models.loss`), ``label_smoothing`` and global-norm ``clipnorm`` are used by
        :meth:`train_step` and :meth:`test_step`."""
        super().compile(optimizer=optimizer, **kwargs)
        apply_gradients_as_given(self.optimizer)
        self.label_smoothing, self.clipnorm = label_smoothing, clipnorm
        self.sequence_loss = sequence_loss

    @property
    def metrics(self):
        return [self.loss_tracker, self.nll_tracker, self.grad_norm_tracker, self.tokens_tracker]

    def _sequence_losses(self, data, training):
        (src, tgt_in), tgt_out = data
        logits = self.logits_for(src, tgt_in, training=training)
        return self.sequence_loss(logits, tgt_out, self.label_smoothing)

    def train_step(self, data):
        """One update. Under a ``tf.distribute`` strategy each replica holds part of the global
        batch; its loss is weighted by its share of the global token count and the gradients
        are summed over replicas before clipping, so the update is the one a single device
        would make on the whole batch. The optimizer applies the sum as it is (one all-reduce
        per gradient, not two: see :func:`~s2s.models.keras_internals.apply_gradients_as_given`)."""
        replica = tf.distribute.get_replica_context()
        replicas = replica.num_replicas_in_sync if replica is not None else 1
        scale = self.optimizer.scale_loss(tf.constant(1.0))  # mixed_float16 loss scale, else 1
        with tf.GradientTape() as tape:
            loss, nll, tokens = self._sequence_losses(data, training=True)
            if replicas > 1:
                total = replica.all_reduce("sum", tokens)
                share = tokens / tf.maximum(total, 1.0)
                loss, nll, tokens = loss * share, nll * share, total
            scaled_loss = loss * scale
        grads = tape.gradient(scaled_loss, self.trainable_variables)
        if replicas > 1:
            grads = replica.all_reduce("sum", grads)
            loss, nll = replica.all_reduce("sum", [loss, nll])  # the global means, for the logs
        if self.clipnorm:  # scaled gradients: clipping at clipnorm * scale clips at clipnorm
            grads, norm = tf.clip_by_global_norm(grads, self.clipnorm * scale)
        else:
            norm = tf.linalg.global_norm(grads)
        self.optimizer.apply(grads, self.trainable_variables)
        return self._update_metrics(loss, nll, tokens, norm / scale, replicas)

    def test_step(self, data):
        loss, nll, tokens = self._sequence_losses(data, training=False)
        return self._update_metrics(loss, nll, tokens)

    def _update_metrics(self, loss, nll, tokens, grad_norm=None, replicas: int = 1):
        """Update the trackers; returns this step's logs.

        With ``replicas > 1`` the values are global and the same on every replica: each
        replica counts ``1 / replicas`` of the tokens, so the trackers, which are summed over
        replicas when read at the end of an epoch, hold the global figures, and every
        replica's logs are the global figures.
        """
        weight = tokens / replicas if replicas > 1 else tokens
        self.loss_tracker.update_state(loss, sample_weight=weight)
        self.nll_tracker.update_state(nll, sample_weight=weight)
        self.tokens_tracker.update_state(weight)
        trackers = [self.loss_tracker, self.nll_tracker, self.tokens_tracker]
        if grad_norm is not None:
            self.grad_norm_tracker.update_state(grad_norm)
            trackers.append(self.grad_norm_tracker)
        logs = {m.name: m.result() for m in trackers}
        logs["tokens"] = logs["tokens"] * replicas
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras averages step logs across workers over axis 0, which scalars lack.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs
