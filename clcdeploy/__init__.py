"""clcdeploy: channel-local-convolution networks from PyTorch to ARM phones, measured there.

`create_model` and `list_models` are imported lazily so that `import clcdeploy` does not import torch
(the device and bench layers must work where torch is absent).
"""

from __future__ import annotations

import os

# ONNX Runtime's Linux builds (1.31 here) start Microsoft's 1DS telemetry on the first session: a device id and an
# event store under ~/.cache/Microsoft, and HTTPS uploads. clcdeploy runs ONNX Runtime to validate and time models,
# and does so without it (the variable is read when ONNX Runtime starts; a user's own setting wins).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "__version__"]


def __getattr__(name: str):
    if name in ("create_model", "list_models"):
        from clcdeploy import zoo

        return getattr(zoo, name)
    raise AttributeError(f"module 'clcdeploy' has no attribute {name!r}")
