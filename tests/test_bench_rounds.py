"""Pooling an artifact's rounds into one measurement (`clcdeploy bench --rounds`)."""

import pytest

from clcdeploy.bench.session import Measurement, pool_rounds


def _measurement(times_ms=None, mean_ms=None, finite=True, load_ms=10.0, peak_mb=100.0) -> Measurement:
    if times_ms is not None:
        mean_ms = sum(times_ms) / len(times_ms)
    return Measurement(device="local", model="clcnet_a", format="pte", runner="python", file_bytes=1, macs=1,
                       params=1, times_ms=times_ms, mean_ms=mean_ms, aggregate_only=times_ms is None,
                       outputs_finite=finite, load_ms=load_ms, peak_memory_mb=peak_mb)


def test_one_round_is_the_measurement_itself():
    single = _measurement([1.0, 2.0])
    assert pool_rounds([single]) is single


def test_rounds_pool_their_passes_and_keep_each_rounds_mean():
    pooled = pool_rounds([_measurement([1.0, 3.0], load_ms=5.0),
                          _measurement([4.0, 4.0], load_ms=9.0, peak_mb=150.0),
                          _measurement([2.0, 2.0], load_ms=7.0)])
    assert pooled.times_ms == [1.0, 3.0, 4.0, 4.0, 2.0, 2.0]
    assert pooled.mean_ms == pytest.approx(16 / 6) and (pooled.min_ms, pooled.max_ms) == (1.0, 4.0)
    assert pooled.extra["round_means_ms"] == [2.0, 4.0, 2.0]
    assert (pooled.load_ms, pooled.peak_memory_mb, pooled.outputs_finite) == (7.0, 150.0, True)


def test_aggregate_only_rounds_average_their_means_and_a_non_finite_round_flags_the_whole():
    pooled = pool_rounds([_measurement(mean_ms=2.0), _measurement(mean_ms=4.0, finite=False)])
    assert pooled.times_ms is None and pooled.aggregate_only
    assert pooled.mean_ms == pytest.approx(3.0) and pooled.std_ms is None
    assert pooled.outputs_finite is False
