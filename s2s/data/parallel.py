"""Chunks of a corpus processed by worker processes, the results consumed in order.

The data stage (normalising and screening pairs) and the shard writer (tokenising them) are
CPU-bound Python over independent chunks; the main process keeps what must stay in order
(duplicates, counting, writing). At most ``workers + 1`` chunks are in flight, so memory stays
bounded whatever the corpus size. Workers are spawned, not forked: TensorFlow's threads may be
running in the main process, and a forked copy of a threaded process can deadlock.
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator


def cpu_count() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def worker_count(setting: int | None, items: int, chunk: int) -> int:
    """Processes for ``items`` in chunks of ``chunk``: ``setting``, or one per core (None);
    none (1) for a single chunk, where starting them would cost more than they save."""
    if items <= chunk:
        return 1
    return setting or cpu_count()


def ordered_map(function: Callable, items: Iterable, workers: int, *args) -> Iterator:
    """``function(item, *args)`` for each item, in order; in ``workers`` processes when
    ``workers > 1`` (``function`` and its arguments must then be picklable)."""
    if workers <= 1:
        yield from (function(item, *args) for item in items)
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        pending: collections.deque = collections.deque()
        for item in items:
            pending.append(pool.submit(function, item, *args))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
