"""Lines of a stream in groups of what has arrived: a program reading a pipe or a terminal
translates each group as soon as input pauses, instead of waiting for a full batch."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

_END = object()


def arrived_groups(lines: Iterable[str], most: int, pause: float = 0.05) -> Iterator[list[str]]:
    """``lines`` in order, in groups of at most ``most``: a group ends when it is full or when
    no further line arrives within ``pause`` seconds (or the stream ends). A thread reads
    ``lines`` so that a pause can be noticed while a read blocks."""
    arrivals: queue.Queue = queue.Queue(maxsize=4 * most)
    failure: list[BaseException] = []

    def read() -> None:
        try:
            for line in lines:
                arrivals.put(line)
        except BaseException as e:  # handed to the consumer, which raises it
            failure.append(e)
        finally:
            arrivals.put(_END)

    threading.Thread(target=read, daemon=True).start()
    group: list[str] = []
    while True:
        try:
            item = arrivals.get(timeout=pause) if group else arrivals.get()
        except queue.Empty:  # a pause: hand over what has arrived
            yield group
            group = []
            continue
        if item is _END:
            break
        group.append(item)
        if len(group) >= most:
            yield group
            group = []
    if failure:
        raise failure[0]
    if group:
        yield group
