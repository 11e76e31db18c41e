"""Which artifacts need the fused IGC kernel, and loading it: into ExecuTorch's Python runtime (.pte), into an
ONNX Runtime session's options (.onnx), or as a LiteRT delegate (.tflite)."""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

from clcdeploy.kernels.build import (
    KernelBuildError, build_executorch_kernels, build_litert_kernels, build_onnxruntime_kernels,
)
from clcdeploy.kernels.ops import LITERT_CUSTOM_CODE, ONNX_DOMAIN, ONNX_OP_TYPE, QUALIFIED_OUT_NAME

_loaded: dict[str, ctypes.CDLL] = {}


def pte_operators(path: str | Path) -> set[str]:
    """Names of the non-delegated operators a .pte calls (from its flatbuffer's operator table)."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    program = deserialize_pte_binary(Path(path).read_bytes())
    program = getattr(program, "program", program)
    return {f"{op.name}.{op.overload}" if op.overload else op.name
            for plan in program.execution_plan for op in plan.operators}


def pte_uses_fused_igc(path: str | Path) -> bool:
    """True if the .pte calls `clcdeploy::igc2.out` (it then needs this package's kernel library)."""
    stat = Path(path).stat()
    return _uses_fused_igc(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _uses_fused_igc(path: str, mtime_ns: int, size: int) -> bool:  # keyed on the file's identity
    return QUALIFIED_OUT_NAME in pte_operators(path)


PER_MODEL_WORKSPACE = 1  # XNNPACK workspace sharing mode for fused programs (igc2_executorch.cpp says why)


def load_executorch_kernels() -> Path:
    """Build (if needed) and load the kernel library so ExecuTorch's registry has `clcdeploy::igc2.out`, and
    give the programs loaded from then on one XNNPACK workspace per model."""
    library = build_executorch_kernels()
    key = str(library)
    if key not in _loaded:
        import executorch.extension.pybindings.portable_lib  # noqa: F401  (loads libexecutorch.so first)

        try:
            loaded = ctypes.CDLL(key, mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            raise KernelBuildError(f"cannot load the fused IGC kernel library {library}: {exc}") from exc
        if not loaded.clcdeploy_set_xnnpack_workspace_sharing(PER_MODEL_WORKSPACE):
            raise KernelBuildError("ExecuTorch's XNNPACK backend did not take workspace sharing mode "
                                   f"{PER_MODEL_WORKSPACE} (per model)")
        _loaded[key] = loaded
    return library


def prepare_pte(path: str | Path) -> bool:
    """Load the kernel library if the .pte at `path` needs it; return whether it does."""
    needed = pte_uses_fused_igc(path)
    if needed:
        load_executorch_kernels()
    return needed


def onnx_uses_fused_igc(model) -> bool:
    """True if the ONNX model (a path or a ModelProto) has a `clcdeploy.IGC2` node."""
    import onnx

    proto = onnx.load(str(model), load_external_data=False) if isinstance(model, (str, Path)) else model
    return any(n.domain == ONNX_DOMAIN and n.op_type == ONNX_OP_TYPE for n in proto.graph.node)


def prepare_onnx(options, path: str | Path) -> bool:
    """Register the ONNX Runtime kernel library on session `options` if the model at `path` needs it; return
    whether it does."""
    needed = onnx_uses_fused_igc(path)
    if needed:
        options.register_custom_ops_library(str(build_onnxruntime_kernels()))
    return needed


def tflite_uses_fused_igc(path: str | Path) -> bool:
    """True if the .tflite's operator codes include the custom op `custom_call.CLCDEPLOY_IGC2`."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    codes = (model.OperatorCodes(i).CustomCode() for i in range(model.OperatorCodesLength()))
    return any(code is not None and code.decode() == LITERT_CUSTOM_CODE for code in codes)


def litert_delegates(path: str | Path, num_threads: int = 1) -> list:
    """The delegates a LiteRT interpreter for the model at `path` needs besides its default XNNPACK: clcdeploy's
    IGC2 delegate if the model calls the fused op, else none."""
    if not tflite_uses_fused_igc(path):
        return []
    from ai_edge_litert.interpreter import load_delegate

    return [load_delegate(str(build_litert_kernels()), {"num_threads": str(max(1, num_threads))})]
