"""Decoding: the search loop (:mod:`.loop`) and its strategies (greedy, beam, sampling), the
searches the rest of s2s calls, compiled or not (:mod:`.search`), language-model fusion, and the
:class:`~s2s.decoding.translator.Translator` that turns text into text."""
