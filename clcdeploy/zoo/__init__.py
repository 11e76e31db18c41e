"""Model zoo: one module per family; importing this package registers every model."""

from clcdeploy.zoo._registry import ModelSpec, create_model, list_models, model_spec, register_model

# Each import registers that family's models (one line per family).
from clcdeploy.zoo import clcnet  # noqa: E402,F401
from clcdeploy.zoo import mobilenet  # noqa: E402,F401
from clcdeploy.zoo import shufflenet  # noqa: E402,F401
from clcdeploy.zoo import channelnet  # noqa: E402,F401
from clcdeploy.zoo import sic  # noqa: E402,F401
from clcdeploy.zoo import sparse_kernel  # noqa: E402,F401

__all__ = ["ModelSpec", "create_model", "list_models", "model_spec", "register_model"]
