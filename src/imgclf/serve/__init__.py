"""`imgclf serve`: an HTTP prediction server with micro-batching, limits and metrics.

- `imgclf.config.ServeConfig`: the settings (with the other stage configs).
- `imgclf.serve.batcher`: `MicroBatcher`, images of concurrent requests in one model call.
- `imgclf.serve.app`: `build_app`, the FastAPI app (endpoints, limits, error answers).
- `imgclf.serve.metrics`: `ServeMetrics`, Prometheus counters and histograms.
- `imgclf.serve.server`: `load_served_model`, `Server` (the socket, uvicorn, graceful stop).

Nothing heavy is imported here: `imgclf serve --help` stays fast.
"""
