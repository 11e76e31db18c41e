"""LiteRT: the per-operator profiler (LiteRT C API) and the per-convolution PADs of the .tflite export.

Tiny graphs with the shape that made clcNet-A slow on LiteRT: one tensor read by two stride-2 depthwise
convolutions (PyTorch padding 1, which TFLite writes as PAD + VALID convolution).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from clcdeploy.bench.litert_profile import OUTSIDE_OPERATORS, LiteRtError, profile_tflite
from clcdeploy.export import tflite_format

CONSTANT_PAD = "Constant Pad (ND, X32)"  # XNNPACK's name for a PAD it did not fold into a convolution


class TwoReaders(nn.Module):
    """A stem whose output two stride-2 depthwise convolutions read (the split IGC lowering's pattern)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.dw_a = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.dw_b = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.pointwise = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        return self.pointwise(self.dw_a(x) + self.dw_b(x))


class PadForConvAndPool(nn.Module):
    """One explicit zero padding read by a stride-2 convolution and an average pool (stride 2: no SAME)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 1)
        self.dw = nn.Conv2d(8, 8, 3, stride=2, groups=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(F.relu(self.stem(x)), (1, 1, 1, 1))
        return self.dw(padded) + F.avg_pool2d(padded, 3, stride=2)


def _export(model: nn.Module, path: Path, *, unshare: bool, monkeypatch: pytest.MonkeyPatch) -> dict:
    torch.manual_seed(0)
    with monkeypatch.context() as patch:
        if not unshare:
            patch.setattr(tflite_format, "unshare_pads", lambda _: 0)
        with torch.no_grad():
            return tflite_format.export(model.eval(), torch.randn(1, 3, 16, 16), path)


def _pad_consumers(path: Path) -> list[int]:
    """For each PAD operator of the flatbuffer, how many operators read its output."""
    from ai_edge_litert.interpreter import Interpreter

    ops = Interpreter(model_path=str(path))._get_ops_details()
    readers = [i for op in ops for i in op["inputs"]]
    return [readers.count(op["outputs"][0]) for op in ops if op["op_name"] == "PAD"]


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    return tflite_format.run(path, x)


@pytest.fixture(scope="module")
def two_readers(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path, Path, dict]:
    folder = tmp_path_factory.mktemp("pads")
    model = TwoReaders().eval()
    with pytest.MonkeyPatch.context() as monkeypatch:
        shared = folder / "shared.tflite"
        _export(model, shared, unshare=False, monkeypatch=monkeypatch)
        own = folder / "own.tflite"
        facts = _export(model, own, unshare=True, monkeypatch=monkeypatch)
    return model, shared, own, facts


def test_converter_shares_one_pad_between_the_two_convolutions(two_readers) -> None:
    _, shared, _, _ = two_readers
    assert _pad_consumers(shared) == [2]


def test_export_gives_each_convolution_its_own_pad(two_readers) -> None:
    _, _, own, facts = two_readers
    assert facts["pads_unshared"] == 1
    assert _pad_consumers(own) == [1, 1]


def test_own_pads_compute_exactly_the_shared_result(two_readers) -> None:
    model, shared, own, _ = two_readers
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16), dtype=np.float32)
    np.testing.assert_array_equal(_run(own, x), _run(shared, x))
    expected = model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(_run(own, x), expected, atol=1e-4)


def test_xnnpack_folds_each_own_pad_into_its_convolution(two_readers) -> None:
    _, shared, own, _ = two_readers
    x = np.zeros((1, 3, 16, 16), np.float32)
    assert profile_tflite(shared, x, runs=2, warmup=1)[CONSTANT_PAD][1] == 1
    assert CONSTANT_PAD not in profile_tflite(own, x, runs=2, warmup=1)


def test_a_pad_also_read_by_a_pool_stays_for_the_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, path = PadForConvAndPool().eval(), tmp_path / "pool.tflite"
    assert _export(model, path, unshare=True, monkeypatch=monkeypatch)["pads_unshared"] == 1
    assert sorted(_pad_consumers(path)) == [1, 1]
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16), dtype=np.float32)
    expected = model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(_run(path, x), expected, atol=1e-4)


def test_profile_reports_each_xnnpack_operator_per_inference(two_readers) -> None:
    _, _, own, _ = two_readers
    profile = profile_tflite(own, np.ones((1, 3, 16, 16), np.float32), runs=3, warmup=1)
    nodes = {op: count for op, (_, count) in profile.items()}
    # stem: an IGEMM convolution; two depthwise; their sum; the 1x1 as a GEMM; the NCHW output
    # ... and the rest of each invoke, once per inference
    assert nodes == {"Convolution (NHWC, F32) IGEMM": 1, "Convolution (NHWC, F32) DWConv": 2, "Add (ND)": 1,
                     "Fully Connected (NC, F32) GEMM": 1, "Transpose (ND, X32) Transpose": 1, OUTSIDE_OPERATORS: 1}
    assert all(ms >= 0 for ms, _ in profile.values()) and sum(ms for ms, _ in profile.values()) > 0


def test_profile_refuses_an_input_of_the_wrong_size(two_readers) -> None:
    _, _, own, _ = two_readers
    with pytest.raises(LiteRtError, match=r"input of shape \(1, 8, 32, 3\) given, the model takes \(1, 16, 16, 3\)"):
        profile_tflite(own, np.ones((1, 3, 8, 32), np.float32), runs=1)


def test_profile_of_a_file_that_is_no_model_fails_in_litert(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(LiteRtError, match="LiteRtCreateModelFromFile"):
        profile_tflite(bad, np.ones((1, 3, 16, 16), np.float32), runs=1)
