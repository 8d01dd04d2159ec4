"""Times shown both ways: relative words, on both sides of every unit's boundary."""

from datetime import UTC, datetime, timedelta

import pytest

from timetext import relative_time

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=59), "in less than a minute"),
        (timedelta(seconds=60), "in 1 min"),
        (timedelta(minutes=59, seconds=59), "in 59 min"),
        (timedelta(hours=1), "in 1 h"),
        (timedelta(hours=3, minutes=12), "in 3 h 12 min"),
        (timedelta(hours=23, minutes=59), "in 23 h 59 min"),
        (timedelta(days=1), "in 1 day"),
        (timedelta(days=6, hours=23), "in 6 days 23 h"),
        (timedelta(0), "just now"),
        (timedelta(seconds=-59), "just now"),
        (timedelta(minutes=-5), "5 min ago"),
        (timedelta(days=-2), "2 days ago"),
    ],
)
def test_relative_time(delta, words):
    assert relative_time(NOW + delta, NOW) == words
