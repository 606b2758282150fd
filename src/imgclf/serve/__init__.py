"""`imgclf serve`: an HTTP prediction server with micro-batching, limits and metrics.

- `imgclf.config.ServeConfig`: the settings (with the other stage configs).
- `imgclf.serve.batcher`: `MicroBatcher`, images of concurrent requests in one model call.
- `imgclf.serve.app`: `build_app`, which assembles the FastAPI app from the modules below.
- `imgclf.serve.routes`: the endpoints (`/v1/predict`, `/v1/health`, `/v1/model`, `/v1/metrics`).
- `imgclf.serve.deps`: `ServeState` (predictor, config, batcher, thread pools, URL fetch), the
  endpoints' FastAPI dependency.
- `imgclf.serve.guard`: `RequestGuard`, the `Host` (DNS rebinding) and body-size checks.
- `imgclf.serve.errors`: the JSON error answers and exception handlers.
- `imgclf.serve.schemas`: the response models of the OpenAPI schema.
- `imgclf.serve.metrics`: `ServeMetrics`, Prometheus counters and histograms; `CountRequests`.
- `imgclf.serve.server`: `load_served_model`, `Server` (the socket, uvicorn, graceful stop).

Nothing heavy is imported here: `imgclf serve --help` stays fast.
"""
