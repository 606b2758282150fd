"""`imgclf review`: a local web page where a person looks at a dataset and decides.

The decisions database (`DIR/_reports/decisions.sqlite`) is a stage record,
`imgclf.records.decisions` (its writer and reader); `imgclf clean` replays it with the pure rule
`imgclf.clean.replay.plan_replay`.

- `imgclf.review.data`: what each page shows (class grids, label issues, duplicate groups,
  label conflicts, a run's confident errors, the blurriest images, decisions), read from the
  folder and the reports of `clean`, `audit` and `evaluate`; and the safe path check.
- `imgclf.review.app`: assembles the Starlette application (`create_app`) from
  `imgclf.review.guard` (token, Host and Origin checks), `imgclf.review.pages` (the pages and
  image files), `imgclf.review.actions` (decide, undo), `imgclf.review.state` (what the routes
  depend on) and `imgclf.review.thumbs` (thumbnails); the page is `templates/review/page.html`.
- `imgclf.review.server`: binds the socket and runs it with uvicorn.

Importing this package imports nothing heavy.
"""

#: Address `imgclf review` binds by default (loopback only).
DEFAULT_HOST = "127.0.0.1"

#: Port `imgclf review` listens on by default (0 = any free port).
DEFAULT_PORT = 8765
