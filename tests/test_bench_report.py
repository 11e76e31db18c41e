"""The report's ratio column: each model against MobileNet-v1 on the same device, format and input size."""

from __future__ import annotations

from clcdeploy.bench.report import relative_speed, table_rows
from clcdeploy.bench.session import DeviceRun, Measurement
from clcdeploy.bench.stats import summarize


def _measurement(model: str, mean_ms: float, size: int, times=None) -> Measurement:
    return Measurement(device="local", model=model, format="onnx", runner="python", file_bytes=1, macs=1, params=1,
                       times_ms=times, mean_ms=mean_ms, input_shape=[1, 3, size, size])


def test_the_baseline_is_mobilenet_at_the_same_input_size_and_the_full_model_first() -> None:
    tiny, full = _measurement("mobilenet_v1_tiny", 0.1, 32), _measurement("mobilenet_v1", 5.0, 224)
    clcnet, clcnet_tiny = _measurement("clcnet_a", 4.0, 224), _measurement("clcnet_tiny", 0.05, 32)
    everything = [tiny, clcnet_tiny, full, clcnet]
    assert relative_speed(full, everything) == 1.0
    assert relative_speed(clcnet, everything) == 0.8
    assert relative_speed(clcnet_tiny, everything) == 0.5
    other_tiny = _measurement("mobilenet_v1_tiny", 1.0, 224)  # a tiny variant at 224 does not displace the real one
    assert relative_speed(clcnet, [other_tiny, *everything]) == 0.8
    assert relative_speed(_measurement("clcnet_a", 4.0, 160), everything) is None


def test_one_pass_has_no_spread_to_print() -> None:
    one = Measurement(device="local", model="clcnet_a", format="onnx", runner="python", file_bytes=1, macs=1,
                      params=1, times_ms=[4.0], input_shape=[1, 3, 224, 224], **summarize([4.0]))
    (row,) = table_rows([DeviceRun("local", measurements=[one])], full=False)
    assert row["latency ms"] == "4.00 (1 pass)"


def test_latencies_below_a_tenth_of_a_millisecond_keep_three_significant_digits():
    from clcdeploy.bench.report import _ms

    assert [_ms(v) for v in (0.0412, 0.00305, 0.5, 12.34, 1780.4)] == ["0.0412", "0.00305", "0.50", "12.3", "1780"]


def _latency_of(times: list[float]) -> str:
    measured = Measurement(device="local", model="clcnet_a", format="onnx", runner="python", file_bytes=1, macs=1,
                           params=1, times_ms=times, input_shape=[1, 3, 224, 224], **summarize(times))
    (row,) = table_rows([DeviceRun("local", measurements=[measured])], full=False)
    return row["latency ms"]


def test_the_spread_is_printed_in_its_means_precision() -> None:
    assert _latency_of([4.9, 5.0, 5.05]) == "4.98 ± 0.08"  # not "± 0.0764"
    assert _latency_of([120.0, 121.0]) == "120.5 ± 0.7"
    assert _latency_of([0.04, 0.0401, 0.0412]) == "0.0404 ± 0.000666"  # tiny test models: significant digits


def test_the_device_line_says_how_many_cores_were_online() -> None:
    from clcdeploy.bench.report import facts_lines

    def cpu_line(facts: dict) -> str:
        return facts_lines(DeviceRun("phone", facts={"cpu_core_names": ["Cortex-A7"], **facts}))[1]

    assert cpu_line({"cores": 4, "cores_online": 2}).startswith("  CPU: Cortex-A7, 4 cores (2 online), max freq")
    assert cpu_line({"cores": 4, "cores_online": 4}).startswith("  CPU: Cortex-A7, 4 cores, max freq")
    assert cpu_line({"cores": 4}).startswith("  CPU: Cortex-A7, 4 cores, max freq")  # results of older versions
