"""Scraping images into labelled folders: Reddit (praw) and web pages.

- `imgclf.scrape.reddit`: `scrape_reddit(source, out, cfg)`: the walk of subreddit listings.
- `imgclf.scrape.reddit_posts`: what one post gives (`post_images`, its manifest record).
- `imgclf.scrape.reddit_client`: praw with prawcore's rate limiting and retries (`make_reddit`).
- `imgclf.scrape.web`: `scrape_web(source, out, cfg)`: the crawl of pages and image URLs.
- `imgclf.scrape.pages`: what an HTML page offers (images, links, robots `<meta>`).
- `imgclf.scrape.robots`: robots.txt per origin (RFC 9309, Protego).
- `imgclf.scrape.download`: the per-URL map `download_task(task, cfg) -> UrlOutcome`.
- `imgclf.scrape.runner`: `Runner`, the worker pool that runs the map, stores each image
  atomically under its content hash and records it in the manifest (`ScrapeSummary`).

Fetching is `imgclf.net` (the safe downloader, shared with predict and serve); the manifest
`<out>/_manifest.sqlite` is the record `imgclf.records.manifest`, which later stages read.
Images land in `<out>/<label>/<sha256[:16]><ext>`. Submodules are imported on use, so
`import imgclf.scrape` stays light.
"""
