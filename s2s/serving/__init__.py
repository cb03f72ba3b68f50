"""Serving: the string-in, string-out SavedModel for TensorFlow Serving (:mod:`.export`, with
normalisation as graph ops in :mod:`.text_graph`), and the translation page with its JSON API
(:mod:`.app`, :mod:`.engines`, :mod:`.schemas`)."""
