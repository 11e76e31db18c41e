"""Custom kernels: the fused IGC (CRF 2) op, its torch-side definition, and its runtime bindings and loading.

Opt-in: `fuse_igc` rewrites a (BN-folded) model so exports contain `clcdeploy::igc2`. A `.pte` then calls the
ExecuTorch kernel library (`prepare_pte` builds and loads it when `pte_uses_fused_igc` says so); an `.onnx`
has the custom node `clcdeploy.IGC2`, which ONNX Runtime runs with clcdeploy's custom-op library
(`prepare_onnx`); a `.tflite` has the custom op `custom_call.CLCDEPLOY_IGC2`, which LiteRT runs with
clcdeploy's delegate (`litert_delegates`).
"""

from clcdeploy.kernels.build import (
    KernelBuildError, build_executorch_kernels, build_litert_kernels, build_onnxruntime_kernels,
)
from clcdeploy.kernels.fuse import ChannelsLast, FusedIGC2, fusable, fuse_igc
from clcdeploy.kernels.runtime import (
    litert_delegates, load_executorch_kernels, onnx_uses_fused_igc, prepare_onnx, prepare_pte, pte_operators,
    pte_uses_fused_igc, tflite_uses_fused_igc,
)

__all__ = ["ChannelsLast", "FusedIGC2", "KernelBuildError", "build_executorch_kernels", "build_litert_kernels",
           "build_onnxruntime_kernels", "fusable", "fuse_igc", "litert_delegates", "load_executorch_kernels",
           "onnx_uses_fused_igc", "prepare_onnx", "prepare_pte", "pte_operators", "pte_uses_fused_igc",
           "tflite_uses_fused_igc"]
