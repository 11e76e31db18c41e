"""Runner output parsers against the formats documented in shared/design/RUNNER_FORMATS.md."""

import pytest

from clcdeploy.bench.parsers import parse_benchmark_model, parse_executor_runner, parse_onnxruntime_perf_test
from clcdeploy.errors import BenchError

EXECUTOR_RUNNER_POSIX = """\
I 00:00:00.001234 executorch:executor_runner.cpp:120] Model file m.pte is loaded.
I 00:00:00.002000 executorch:executor_runner.cpp:180] Model loaded in 12.500000 ms.
I 00:00:00.100000 executorch:executor_runner.cpp:250] Iteration 1 of 3: 80.250000 ms
I 00:00:00.180000 executorch:executor_runner.cpp:250] Iteration 2 of 3: 79.750000 ms
I 00:00:00.260000 executorch:executor_runner.cpp:250] Iteration 3 of 3: 81.000000 ms
I 00:00:00.260100 executorch:executor_runner.cpp:260] Model executed successfully 3 time(s) in 241.000000 ms.
"""


def test_executor_runner_every_pass():
    out = parse_executor_runner(EXECUTOR_RUNNER_POSIX)
    assert out.times_ms == [80.25, 79.75, 81.0] and out.load_ms == 12.5 and not out.aggregate_only
    assert out.mean_ms == pytest.approx(241.0 / 3)


def test_executor_runner_total_only_is_an_aggregate_not_an_average():
    out = parse_executor_runner("Model loaded in 5.0 ms.\nModel executed successfully 4 time(s) in 400.0 ms.\n")
    assert out.times_ms is None and out.aggregate_only and out.mean_ms == 100.0


def test_executor_runner_logcat_variant():
    text = "11-21 10:00:00.000  1234  1234 I ExecuTorch: Iteration 1 of 1: 12.5 ms\n"
    assert parse_executor_runner(text).times_ms == [12.5]


def test_benchmark_model_summary_and_memory():
    text = """\
count=1 curr=83235
count=50 first=79449 curr=81350 min=77385 max=88213 avg=79732 std=1929
Inference timings in us: Init: 38467, First inference: 83235, Warmup (avg): 80001, Inference (avg): 79760.9
Memory footprint delta from the start of the tool (MB): init=3.5 overall=12.25
Overall peak memory footprint (MB) via periodic monitoring: 14.5
"""
    out = parse_benchmark_model(text)
    assert out.aggregate_only and out.times_ms is None
    assert out.mean_ms == pytest.approx(79.7609) and out.load_ms == pytest.approx(38.467)
    assert out.peak_memory_mb == 14.5 and out.extra["count"] == 50 and out.extra["std_ms"] == pytest.approx(1.929)


def test_benchmark_model_variants():
    # e-notation, all-same samples, newer percentile suffix, footprint without periodic monitoring
    text = ("count=10 curr=2950340(all same)\n"
            "Inference timings in us: Init: 1.2e+05, First inference: 2.95034e+06, Warmup (avg): 2.95034e+06, "
            "Inference (avg): 2.95034e+06\n"
            "Memory footprint delta from the start of the tool (MB): init=1.5 overall=22.75\n")
    out = parse_benchmark_model(text)
    assert out.mean_ms == pytest.approx(2950.34) and out.peak_memory_mb == 22.75
    newer = "count=20 first=10 curr=11 min=9 max=12 avg=10.5 std=1 p5=9 median=10 p95=12\n"
    assert parse_benchmark_model(newer).mean_ms == pytest.approx(0.0105)


def test_onnxruntime_perf_test():
    text = """\
Session creation time cost: 0.0425 s
First inference time cost: 9 ms
Total inference time cost: 0.5 s
Total inference requests: 100
Average inference time cost: 5.05 ms
Total inference run time: 0.51 s
Number of inferences per second: 198
Peak working set size: 52428800 bytes
Min Latency: 0.0048 s
Max Latency: 0.0061 s
P50 Latency: 0.005 s
P90 Latency: 0.0055 s
P95 Latency: 0.0057 s
P99 Latency: 0.006 s
P999 Latency: 0.0061 s
"""
    out = parse_onnxruntime_perf_test(text)
    assert out.mean_ms == 5.05 and out.load_ms == pytest.approx(42.5) and out.peak_memory_mb == 50.0
    assert out.aggregate_only and out.extra["p50_ms"] == pytest.approx(5.0)


@pytest.mark.parametrize("parse", [parse_executor_runner, parse_benchmark_model, parse_onnxruntime_perf_test])
def test_unrecognised_output_is_an_error(parse):
    with pytest.raises(BenchError):
        parse("Segmentation fault\n")
