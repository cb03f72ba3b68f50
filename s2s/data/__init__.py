"""Data: corpora (find, download, verify), readers, cleaning, dev/test sets, the run's data
stage, shards of piece ids and the tf.data pipeline. Nothing here imports models, decoding,
training or serving."""
