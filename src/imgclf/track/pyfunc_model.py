"""The MLflow model of an imgclf run (MLflow "models from code": MLflow runs this file to load it).

Logged by `imgclf.track.mlflow.MlflowBackend.log_model`, never imported by imgclf itself. The
model's artifact `run` holds the run's `best.keras` and `run.json`; its code folder holds a
copy of the `imgclf` package, so loading needs MLflow and imgclf's dependencies, not imgclf.

    import mlflow
    from imgclf.inputs import load_image
    model = mlflow.pyfunc.load_model("models:/m-...")          # or runs:/<run id>/model
    spec = ...                                                  # the run's InputSpec (metadata["input_spec"])
    probs = model.predict(np.stack([load_image(f, spec) for f in files]))

`predict` takes raw RGB images `(batch, size, size, 3)` uint8 in [0, 255] -- the run's input
size, made by `imgclf.inputs.load_image` -- and returns the class probabilities
`(batch, num_classes)` float32, columns in the order of the model's `metadata["class_names"]`,
the same as `imgclf predict --json` (one loader: `imgclf.runtime.load_model`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


class ImgclfModel(PythonModel):
    """An imgclf run as a `mlflow.pyfunc` model: raw RGB batches in, probabilities out."""

    def load_context(self, context: Any) -> None:
        """Loads the run's `best.keras` with `imgclf.runtime.load_model` (safe mode)."""
        from imgclf.runtime import load_model

        self.predictor = load_model(context.artifacts["run"])

    def predict(self, context: Any, model_input: np.ndarray, params: dict[str, Any] | None = None) -> np.ndarray:
        """Class probabilities `(batch, num_classes)` float32 of raw RGB images `(batch, size, size, 3)`
        uint8 in [0, 255]. (An `np.ndarray` hint: MLflow checks the input against the logged
        signature, not against a schema inferred from the hint.)"""
        if isinstance(model_input, dict) and len(model_input) == 1:  # a named tensor, as a server may pass it
            model_input = next(iter(model_input.values()))
        return self.predictor.predict_arrays(np.asarray(model_input), batch_size=64)


set_model(ImgclfModel())
