"""The worker's histograms, in Prometheus' text format."""

from __future__ import annotations

from worker.measures import Histogram


def test_buckets_are_cumulative_and_a_bound_counts_under_itself() -> None:
    histogram = Histogram(bounds=(0.5, 1.0))
    for value in (0.2, 0.5, 0.7, 3.0):
        histogram.observe(value)
    assert histogram.lines("egaku_render_seconds") == [
        'egaku_render_seconds_bucket{le="0.5"} 2',
        'egaku_render_seconds_bucket{le="1"} 3',
        'egaku_render_seconds_bucket{le="+Inf"} 4',
        "egaku_render_seconds_sum 4.400000",
        "egaku_render_seconds_count 4",
    ]


def test_an_empty_histogram_still_has_every_bucket() -> None:
    lines = Histogram().lines("egaku_job_seconds")
    assert lines[0] == 'egaku_job_seconds_bucket{le="0.1"} 0' and lines[-3] == 'egaku_job_seconds_bucket{le="+Inf"} 0'
    assert len(lines) == 12 + 1 + 2
