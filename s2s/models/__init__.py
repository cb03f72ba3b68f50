"""Models: recurrent cells, attention, the encoder and the attention decoder, the translation
model (:mod:`.seq2seq`) and the language model, their shared training step (:mod:`.base`) and
loss, the precision they compute in, and loading a run's trained weights."""
