"""clcdeploy's LiteRT delegate for the custom op `custom_call.CLCDEPLOY_IGC2`: litert-torch writes the fused op
as that custom op, the delegate (built against Debian's TensorFlow Lite 2.14 C headers, loaded with
`load_delegate`) computes it equal to the IGC's definition on both strides, odd sizes, channel counts off the
vector width, chained ops and several threads, and XNNPACK still takes every other op."""

from __future__ import annotations

import ctypes
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from clcdeploy.kernels.build import build_litert_kernels
from clcdeploy.kernels.ops import LITERT_CUSTOM_CODE, igc2, pack_weight

pytest.importorskip("litert_torch")
litert = pytest.importorskip("ai_edge_litert.interpreter")


class IgcChain(nn.Module):
    """1x1 conv, then `strides` fused IGC ops in a row (a chain of two stays inside one delegate partition)."""

    def __init__(self, channels: int, strides: tuple[int, ...], seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.pointwise = nn.Conv2d(3, channels, 1)
        self.strides = strides
        for i in range(len(strides)):
            self.register_buffer(f"w{i}", pack_weight(torch.randn(channels, 2, 3, 3, generator=g)))
            self.register_buffer(f"b{i}", torch.randn(channels, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pointwise(x)
        for i, stride in enumerate(self.strides):
            y = igc2(y, getattr(self, f"w{i}"), getattr(self, f"b{i}"), stride)
        return torch.relu(y)


CASES = {  # name: (channels, strides, input size h x w)
    "stride1_odd": (8, (1,), (9, 11)),
    "stride2_odd": (6, (2,), (9, 11)),
    "stride2_even_tail": (34, (2,), (14, 14)),  # 34 channels: one 32-channel block plus a scalar tail
    "chained": (64, (2, 1), (10, 7)),
    "single_pixel": (4, (1,), (1, 1)),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, tuple[Path, nn.Module, tuple[int, int]]]:
    from clcdeploy.export import tflite_format

    folder = tmp_path_factory.mktemp("litert")
    out = {}
    for seed, (name, (channels, strides, size)) in enumerate(CASES.items()):
        model = IgcChain(channels, strides, seed).eval()
        path = folder / f"{name}.tflite"
        with torch.no_grad():
            tflite_format.export(model, torch.zeros(1, 3, *size), path)
        out[name] = (path, model, size)
    return out


def loaded(path: Path, x_nchw: np.ndarray, threads: int, delegates: list):
    """An interpreter with `x_nchw` set as its input, and a function that invokes it and returns its output."""
    interpreter = litert.Interpreter(model_path=str(path), num_threads=threads, experimental_delegates=delegates)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1)))

    def invoke() -> np.ndarray:
        interpreter.invoke()
        return interpreter.get_tensor(out["index"])  # the export keeps the output NCHW

    return invoke


def run(path: Path, x_nchw: np.ndarray, threads: int, delegates: list) -> np.ndarray:
    return loaded(path, x_nchw, threads, delegates)()


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("threads", [1, 2])
def test_delegate_equals_the_igc_definition(exported, name, threads) -> None:
    path, model, size = exported[name]
    x = np.random.default_rng(threads).standard_normal((1, 3, *size), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()  # eager: grouped conv + bias + interlace
    delegate = litert.load_delegate(str(build_litert_kernels()), {"num_threads": str(threads)})
    got = run(path, x, threads, [delegate])
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4


def test_helper_threads_stay_exact_over_many_calls_and_concurrent_interpreters(exported) -> None:
    """The delegate's helper threads persist between calls: 3 threads (more than a 2-core machine has), 15
    passes each of two interpreters sharing one delegate, invoked at the same time from two threads (the
    second concurrent call runs on its own thread)."""
    path, model, size = exported["chained"]
    x = np.random.default_rng(7).standard_normal((1, 3, *size), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    delegate = litert.load_delegate(str(build_litert_kernels()), {"num_threads": "3"})
    invokers = [loaded(path, x, 3, [delegate]) for _ in range(2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        passes = list(pool.map(lambda invoke: [invoke().copy() for _ in range(15)], invokers))
    for outputs in passes:
        for got in outputs:
            assert np.abs(got - expected).max() <= 1e-4


def test_export_writes_the_custom_op_and_xnnpack_keeps_the_rest(exported) -> None:
    from clcdeploy.export.delegation import delegation_failures, tflite_report
    from clcdeploy.kernels.runtime import tflite_uses_fused_igc

    path, _, _ = exported["chained"]
    assert tflite_uses_fused_igc(path)
    report = tflite_report(path)
    histogram = report.pop("op_histogram")
    # NHWC throughout: the lowering's transposes cancel; only the NCHW output keeps one
    assert histogram[LITERT_CUSTOM_CODE] == 2 and histogram.get("TRANSPOSE", 0) == 1
    assert report["custom_op_calls"] == {LITERT_CUSTOM_CODE: 2}
    assert report["delegate_partitions"] >= 1 and report["ops_outside_delegate"] == 0
    assert not delegation_failures("tflite", histogram, report, igc_lowered=True)


def test_without_the_delegate_the_interpreter_refuses_the_custom_op(exported) -> None:
    path, _, size = exported["stride1_odd"]
    with pytest.raises(RuntimeError, match="CLCDEPLOY_IGC2"):
        run(path, np.zeros((1, 3, *size), np.float32), 1, [])


def test_bad_delegate_option_is_refused() -> None:
    with pytest.raises(ValueError):
        litert.load_delegate(str(build_litert_kernels()), {"num_threads": "zero"})


def test_library_exports_only_the_external_delegate_entry_points() -> None:
    library = ctypes.CDLL(str(build_litert_kernels()))
    assert library.tflite_plugin_create_delegate and library.tflite_plugin_destroy_delegate
    for internal in ("igc2_nhwc_rows", "TfLiteIntArrayCreate"):
        with pytest.raises(AttributeError):
            getattr(library, internal)
