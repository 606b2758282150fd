"""Scraping images into labelled folders: Reddit (praw) and web pages, one safe downloader.

- `imgclf.scrape.download`: `fetch_image(url)`, the shared safe downloader.
- `imgclf.scrape.reddit`: `scrape_reddit(source, out, cfg)`.
- `imgclf.scrape.web`: `scrape_web(source, out, cfg)`.
- `imgclf.scrape.manifest`: the SQLite provenance / resume manifest (URLs, posts and which post
  pointed at which URL), `summarize(out)` and `file_provenance(out)`.

Images land in `<out>/<label>/<sha256[:16]><ext>`; the manifest is `<out>/_manifest.sqlite`.
Submodules are imported on use, so `import imgclf.scrape` stays light.
"""
