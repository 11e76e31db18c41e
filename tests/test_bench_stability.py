"""Flagging unsteady measurements (`clcdeploy bench` warns; report.md and results.json say which rows)."""

from clcdeploy.bench.report import results_document
from clcdeploy.bench.session import DeviceRun, Measurement, pool_rounds
from clcdeploy.bench.stability import unsteadiness, unsteady_warning
from clcdeploy.bench.stats import summarize


def _measurement(times_ms, model="clcnet_a", fmt="pte", device="local") -> Measurement:
    return Measurement(device=device, model=model, format=fmt, runner="python", file_bytes=1, macs=1, params=1,
                       times_ms=times_ms, **summarize(times_ms))


def test_steady_passes_are_not_flagged():
    assert unsteadiness(_measurement([10.0, 10.5, 9.8, 10.2])) is None


def test_scattered_passes_are_flagged_with_their_scatter():
    assert unsteadiness(_measurement([5.0, 10.0, 5.2, 9.8])) == "passes scatter 37%"


def test_rounds_that_disagree_are_flagged_even_when_each_is_steady():
    pooled = pool_rounds([_measurement([10.0, 10.1] * 4), _measurement([10.0, 10.1] * 4),
                          _measurement([11.5, 11.6] * 4)])
    assert unsteadiness(pooled) == "round averages 15% apart"


def test_an_aggregate_only_measurement_is_not_judged():
    aggregate = Measurement(device="local", model="m", format="pte", runner="benchmark_model", file_bytes=1,
                            macs=1, params=1, times_ms=None, mean_ms=5.0, aggregate_only=True)
    assert unsteadiness(aggregate) is None


def test_the_warning_names_each_unsteady_row_and_what_to_do():
    steady, shaky = _measurement([3.0, 3.0, 3.1]), _measurement([2.0, 6.0, 2.0], model="mobilenet_v1")
    assert unsteady_warning([steady], rounds=1, side_by_side=False) is None
    warning = unsteady_warning([steady, shaky], rounds=1, side_by_side=False)
    assert warning.startswith("warning: unsteady timings") and "\n" not in warning
    assert "mobilenet_v1/pte (passes scatter" in warning and "clcnet_a" not in warning
    assert "--rounds 3" in warning and "--side-by-side" in warning
    assert "--rounds" not in unsteady_warning([shaky], rounds=3, side_by_side=False)  # already used
    assert "--side-by-side" not in unsteady_warning([shaky], rounds=1, side_by_side=True)
    assert "--threads 1" in warning and "--threads" not in unsteady_warning([shaky], rounds=1, side_by_side=False,
                                                                             threads=1)


def test_results_json_lists_the_unsteady_rows():
    run = DeviceRun("local", measurements=[_measurement([3.0, 3.0]), _measurement([1.0, 3.0], fmt="onnx")])
    document = results_document([run], {}, ["clcdeploy", "bench"], {})
    assert document["unsteady"] == [{"device": "local", "model": "clcnet_a", "format": "onnx",
                                     "reason": "passes scatter 71%"}]
