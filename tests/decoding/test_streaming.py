"""Groups of what has arrived: a pause in the input hands over the lines that came before it."""

from __future__ import annotations

import threading

import pytest

from s2s.decoding.streaming import arrived_groups


def test_a_pause_hands_over_what_has_arrived_before_more_comes():
    """The reader blocks after two lines until the consumer has them: without grouping on a
    pause the consumer would wait for a full group, and the two would never meet."""
    handed_over = threading.Event()

    def typed():
        yield "one"
        yield "two"
        assert handed_over.wait(timeout=60), "the first lines were never handed over"
        yield "three"

    groups = arrived_groups(typed(), most=100, pause=0.05)
    assert next(groups) == ["one", "two"]
    handed_over.set()
    assert list(groups) == [["three"]]


def test_full_groups_keep_the_order_of_the_stream():
    lines = [str(i) for i in range(25)]
    groups = list(arrived_groups(iter(lines), most=10))
    assert [line for group in groups for line in group] == lines
    assert all(len(group) <= 10 for group in groups)


def test_an_error_while_reading_reaches_the_consumer():
    def broken():
        yield "fine"
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(arrived_groups(broken(), most=10))
