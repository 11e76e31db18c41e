"""clcdeploy's ONNX Runtime custom op `clcdeploy.IGC2`: built against Debian's ONNX Runtime API headers,
registered with `SessionOptions.register_custom_ops_library`, and equal to the IGC's definition (grouped conv
+ bias + interlace, in PyTorch) on both strides, odd sizes and several threads."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import torch

from clcdeploy.kernels.build import KernelBuildError, build_onnxruntime_kernels
from clcdeploy.kernels.ops import ONNX_DOMAIN, ONNX_OP_TYPE, igc2, pack_weight

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def igc2_model(shape: tuple[int, int, int, int], stride: int, weight: np.ndarray, bias: np.ndarray) -> bytes:
    """A one-node ONNX model: Y = clcdeploy.IGC2(X, W, B) with W, B as initializers."""
    from onnx import TensorProto, helper, numpy_helper

    n, c, h, w = shape
    out = [n, c, (h - 1) // stride + 1, (w - 1) // stride + 1]
    node = helper.make_node(ONNX_OP_TYPE, ["X", "W", "B"], ["Y"], domain=ONNX_DOMAIN, stride=stride)
    graph = helper.make_graph(
        [node], "igc2", [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, out)],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ONNX_DOMAIN, 1)],
                              ir_version=8)  # what torch.onnx writes at opset 17
    return model.SerializeToString()


def session(model: bytes, threads: int = 1, *, with_library: bool = True):
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    if with_library:
        options.register_custom_ops_library(str(build_onnxruntime_kernels()))
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("shape, stride", [
    ((1, 8, 9, 11), 1), ((2, 6, 9, 11), 2), ((1, 4, 7, 7), 1), ((1, 4, 14, 14), 2), ((1, 2, 1, 1), 1),
    ((1, 4, 2, 3), 2), ((1, 64, 5, 40), 1), ((1, 32, 6, 41), 2), ((1, 4, 3, 18), 2),
])
@pytest.mark.parametrize("threads", [1, 2])
def test_custom_op_equals_the_igc_definition(shape, stride, threads) -> None:
    rng = np.random.default_rng(sum(shape) + stride)
    c = shape[1]
    x = rng.standard_normal(shape, dtype=np.float32)
    conv_weight = torch.from_numpy(rng.standard_normal((c, 2, 3, 3), dtype=np.float32))
    bias = rng.standard_normal(c, dtype=np.float32)
    packed = pack_weight(conv_weight)
    expected = igc2(torch.from_numpy(x), packed, torch.from_numpy(bias), stride).numpy()  # eager reference
    got = session(igc2_model(shape, stride, packed.numpy(), bias), threads).run(None, {"X": x})[0]
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-5


@pytest.mark.parametrize("stride", [1, 2])
def test_non_finite_inputs_at_row_ends_reach_only_the_outputs_that_read_them(stride) -> None:
    """The stride-1 path reads rows flattened, so a row-end tap wraps into the next row and is masked off; a
    mask that multiplied turned an inf there into NaN (0 * inf) at the opposite edge of the neighbouring rows."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 4, 5, 5), dtype=np.float32)
    x[0, 1, 2, 4], x[0, 2, 1, 0], x[0, 3, 3, 4] = np.inf, -np.inf, np.nan
    packed = pack_weight(torch.from_numpy(rng.standard_normal((4, 2, 3, 3), dtype=np.float32)))
    bias = np.zeros(4, np.float32)
    expected = igc2(torch.from_numpy(x), packed, torch.from_numpy(bias), stride).numpy()
    got = session(igc2_model(x.shape, stride, packed.numpy(), bias)).run(None, {"X": x})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, equal_nan=True)


def test_without_the_library_onnx_runtime_refuses_the_node() -> None:
    """The node really is ours: a session without clcdeploy's library cannot load the model."""
    model = igc2_model((1, 4, 5, 5), 1, np.zeros((9, 2, 4), np.float32), np.zeros(4, np.float32))
    with pytest.raises(Exception, match="IGC2|clcdeploy"):
        session(model, with_library=False)


def test_bad_stride_and_weight_shape_fail_with_the_kernels_message() -> None:
    weight, bias = np.zeros((9, 2, 4), np.float32), np.zeros(4, np.float32)
    with pytest.raises(Exception, match="stride must be 1 or 2"):
        session(igc2_model((1, 4, 5, 5), 3, weight, bias)).run(None, {"X": np.zeros((1, 4, 5, 5), np.float32)})
    wrong = session(igc2_model((1, 6, 5, 5), 1, weight, bias))  # weights for 4 channels, input with 6
    with pytest.raises(Exception, match=r"W must be \(9, 2, C\)"):
        wrong.run(None, {"X": np.zeros((1, 6, 5, 5), np.float32)})
    unpacked = session(igc2_model((1, 4, 5, 5), 1, np.zeros((4, 2, 3, 3), np.float32), bias))  # as many elements
    with pytest.raises(Exception, match=r"W must be \(9, 2, C\)"):
        unpacked.run(None, {"X": np.zeros((1, 4, 5, 5), np.float32)})


def test_library_exports_only_the_registration_entry_point() -> None:
    library = ctypes.CDLL(str(build_onnxruntime_kernels()))
    assert library.RegisterCustomOps  # what register_custom_ops_library looks up
    with pytest.raises(AttributeError):
        library.igc2_nchw_pairs  # the core stays internal (hidden visibility)
