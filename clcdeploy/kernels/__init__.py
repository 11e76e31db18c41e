"""Custom kernels: the fused IGC (CRF 2) op for ExecuTorch, its torch-side definition and its loading.

Opt-in: `fuse_igc` rewrites a (BN-folded) model so exports contain `clcdeploy::igc2`; such `.pte` files need
the kernel library, which `prepare_pte` builds and loads when `pte_uses_fused_igc` says so.
"""

from clcdeploy.kernels.build import KernelBuildError, build_executorch_kernels
from clcdeploy.kernels.fuse import ChannelsLast, FusedIGC2, fusable, fuse_igc
from clcdeploy.kernels.runtime import load_executorch_kernels, prepare_pte, pte_operators, pte_uses_fused_igc

__all__ = ["ChannelsLast", "FusedIGC2", "KernelBuildError", "build_executorch_kernels", "fusable", "fuse_igc",
           "load_executorch_kernels", "prepare_pte", "pte_operators", "pte_uses_fused_igc"]
