"""Fetching URLs safely: the one downloader of `imgclf scrape`, `imgclf predict URL` and `imgclf serve`.

It sits below every stage that fetches (scrape, predict, serve) and imports no stage. Each
module holds one concern:

- `imgclf.net.fetch`: `fetch_bytes(url)`, the transport: http(s) only on every redirect hop,
  connect / read timeouts, retries with backoff, a streamed body under a byte cap (`RawResponse`).
- `imgclf.net.image`: `fetch_image(url)` = `fetch_bytes` + `check_image` (magic bytes, full
  decode, placeholders) -> `DownloadResult` with its content-hash file name.
- `imgclf.net.budget`: the time budget of one URL across its tries (`UrlBudget`) and the wait
  before a retry (`retry_wait`: `Retry-After`, `x-ratelimit-reset`, equal-jitter backoff).
- `imgclf.net.throttle`: `HostThrottle`, the politeness delay between requests to one host.
- `imgclf.net.safety`: SSRF protection: refuse loopback / private / link-local addresses, at
  check time and on every connection (`check_url`, `guarded_session`).
- `imgclf.net.directives`: `X-Robots-Tag` / robots `<meta>` directives and the product token.
- `imgclf.net.session`: `new_session` and the User-Agent.
- `imgclf.net.urls`: `clean_url`, `redact`, `origin_of`, the scheme check.
- `imgclf.net.errors`: `DownloadError` and which failures are transient (`is_transient`).

The package stays light: its modules import only the standard library, `imgclf.errors` and
`imgclf.images` at module level; `requests` and `urllib3` are imported inside the functions
that send requests, so `imgclf predict` on files never loads them.
"""
