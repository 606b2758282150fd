"""Model zoo: importing this package registers every architecture with
`imgclf.models.registry` (mlp, cnn, vgg, peetznet, densenet201, xception).

Importing it imports TensorFlow / Keras; `imgclf --help` must not, so CLI modules import it
inside their commands.
"""

# Registration order is the order `imgclf models` lists them in.
from imgclf.models import mlp  # noqa: F401, I001
from imgclf.models import cnn  # noqa: F401
from imgclf.models import vgg  # noqa: F401
from imgclf.models import peetznet  # noqa: F401
from imgclf.models import densenet  # noqa: F401
from imgclf.models import xception  # noqa: F401
from imgclf.models.registry import (
    HEAD_LAYERS,
    ModelSpec,
    create_model,
    get_spec,
    list_models,
    model_names,
    register_model,
)

__all__ = ["HEAD_LAYERS", "ModelSpec", "create_model", "get_spec", "list_models", "model_names", "register_model"]
