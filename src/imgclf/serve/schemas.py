"""The JSON bodies of `imgclf serve`, as pydantic models: they make the OpenAPI schema (`/docs`).

Only the schema is declared here; `imgclf.serve.routes` builds the answers and
`imgclf.serve.errors` the error answers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class LabelProbability(BaseModel):
    label: str
    probability: float = Field(ge=0, le=1)


class PredictionRecord(BaseModel):
    """One image's answer: the record of `imgclf predict --json`."""

    input: str = Field(description="The uploaded file name, or the URL.")
    label: str | None = Field(description="Most probable class; null when the image failed.")
    probability: float | None = Field(description="Its probability, in [0, 1].")
    low_confidence: bool = Field(description="True when `probability` < `threshold`.")
    top_k: list[LabelProbability] = Field(description="The `top_k` most probable classes, most probable first.")
    error: str | None = Field(description="`reason: detail` when the image could not be used, else null.")


class PredictResponse(BaseModel):
    predictions: list[PredictionRecord]


class ErrorResponse(BaseModel):
    detail: str = Field(description="What went wrong, naming the file or field, and what to do.")
    reason: str = Field(description="Machine-readable reason, e.g. `not_an_image`, `body_too_large`.")
    predictions: list[PredictionRecord] | None = Field(
        default=None, description="Per-image records, when images were read."
    )
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Every invalid parameter, for `invalid_request`."
    )


class HealthResponse(BaseModel):
    status: str


class Limits(BaseModel):
    max_batch: int
    max_delay_ms: float
    max_bytes: int
    max_images: int
    allow_urls: bool


class ModelResponse(BaseModel):
    kind: str = Field(description="keras | onnx | tflite | saved_model")
    run_name: str | None
    model_file: str
    class_names: list[str]
    input_spec: dict[str, Any]
    imgclf_version: str
    limits: Limits


_ERRORS = {"model": ErrorResponse}

#: The error answers `POST /v1/predict` documents, by status.
PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {**_ERRORS, "description": "Malformed multipart body."},
    403: {**_ERRORS, "description": "URLs are off, or a URL's address is refused."},
    413: {**_ERRORS, "description": "Body larger than --max-bytes, or more than --max-images images."},
    415: {**_ERRORS, "description": "Not a form body, or no image could be read as an image."},
    422: {
        **_ERRORS,
        "description": "Missing field, invalid parameter, or no image usable (bomb, truncated, download failed...).",
    },
}

#: The answer of `GET /v1/metrics`, for the schema.
METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format."}
}
