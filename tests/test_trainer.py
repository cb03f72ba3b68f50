import time

from s2s.trainer import Interval, Progress


def test_the_first_step_is_reported_once_with_the_set_up_time():
    said = []
    progress = Progress(100, 0, 600.0, started=time.perf_counter() - 42.0, say=said.append)
    for _ in range(3):
        progress.update(loss=1.0, tok_s=1000.0, elapsed_s=1.0)
    progress.close()
    assert len(said) == 1 and said[0].startswith("first step 42 s after the run started")


def test_an_interval_ends_by_steps_or_by_minutes_whichever_first():
    interval = Interval(steps=100, minutes=5)
    assert not interval.due(99, 299.0)
    assert interval.due(100, 1.0) and interval.due(1, 300.0)
    assert not Interval(steps=100).due(99, 1e9)
