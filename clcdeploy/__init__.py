"""clcdeploy: channel-local-convolution networks from PyTorch to ARM phones, measured there.

`create_model` and `list_models` are imported lazily so that `import clcdeploy` does not import torch
(the device and bench layers must work where torch is absent).
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "__version__"]


def __getattr__(name: str):
    if name in ("create_model", "list_models"):
        from clcdeploy import zoo

        return getattr(zoo, name)
    raise AttributeError(f"module 'clcdeploy' has no attribute {name!r}")
