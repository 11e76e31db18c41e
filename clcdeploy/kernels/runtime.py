"""Which ExecuTorch programs need the fused IGC kernel, and loading it into the Python runtime."""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

from clcdeploy.kernels.build import KernelBuildError, build_executorch_kernels
from clcdeploy.kernels.ops import QUALIFIED_OUT_NAME

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


def load_executorch_kernels() -> Path:
    """Build (if needed) and load the kernel library so ExecuTorch's registry has `clcdeploy::igc2.out`."""
    library = build_executorch_kernels()
    key = str(library)
    if key not in _loaded:
        import executorch.extension.pybindings.portable_lib  # noqa: F401  (loads libexecutorch.so first)

        try:
            _loaded[key] = ctypes.CDLL(key, mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            raise KernelBuildError(f"cannot load the fused IGC kernel library {library}: {exc}") from exc
    return library


def prepare_pte(path: str | Path) -> bool:
    """Load the kernel library if the .pte at `path` needs it; return whether it does."""
    needed = pte_uses_fused_igc(path)
    if needed:
        load_executorch_kernels()
    return needed
