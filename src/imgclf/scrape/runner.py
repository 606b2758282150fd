"""Shared download loop of the scrapers: bounded worker pool, manifest, atomic storage, progress.

The listing (Reddit) or crawl (web) runs in the caller's thread and feeds `Runner.submit`;
the per-URL map (`imgclf.scrape.download.download_task`) runs in at most `workers` threads --
or, on a Ray cluster (`executor`), the URLs are gathered by host and each host's list runs as
one task (`imgclf.scrape.download.download_host`) when the listing is done;
its outcomes are stored and recorded in the caller's thread (`Runner.store`: content already
stored -> `duplicate_content`, else the file `<label>/<sha256[:16]><ext>` written atomically,
then its manifest row), so the SQLite manifest has a single writer and a file is always
written before its row.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

from rich.markup import escape

from imgclf.config import ScrapeConfig
from imgclf.engine import Executor
from imgclf.errors import ScrapeError
from imgclf.fsutil import atomic_write_bytes
from imgclf.net.session import new_session
from imgclf.net.throttle import HostThrottle
from imgclf.net.urls import host_key, redact
from imgclf.records.manifest import POLICY_SKIPS, Manifest
from imgclf.scrape.download import HostJob, Task, UrlOutcome, download_host, download_task
from imgclf.ui import progress, warn

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$")


def check_label(label: str) -> str:
    """Returns `label` if it is a safe class-folder name, else raises `ScrapeError`.

    A label is 1-100 characters of letters, digits, `.`, `_`, `-` and spaces, not starting
    with `_` or `.` (those names are never classes) and not `..`: the folder stays inside `--out`.
    """
    if not _LABEL.match(label or "") or ".." in label:
        raise ScrapeError(
            f"label {label!r} is not a usable class folder name",
            "use letters, digits, '-', '_' or '.', not starting with '_' or '.', e.g. --label car",
        )
    return label


@dataclass
class ScrapeSummary:
    """What a scrape did.

    Attributes:
        out: Path. The output folder (images in `out/<label>/`, manifest `out/_manifest.sqlite`).
        kept: int. Images stored by this run.
        skipped: dict reason -> count. Not downloaded or not stored, and why (`already_done`,
            `duplicate_content`, `nsfw`, `self_post`, `video`, `removed`, `robots`, ...).
        failed: dict reason -> count. Download or content failures (`html`, `truncated`,
            `too_large`, `timeout`, `http_404`, `placeholder`, ...).
        notes: list of str. Things the user should know (e.g. Reddit's listing cap reached).
        listings: list of dict. Reddit only: one entry per listing walked, with `subreddit`,
            `listing` (e.g. `"top/all"`), `listed` (posts it gave), `new` (unique posts it
            added) and `stopped` (why the walk of it ended).
        posts: int. Reddit only: unique posts seen in this run.
    """

    out: Path
    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    listings: list[dict[str, Any]] = field(default_factory=list)
    posts: int = 0

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def total_failed(self) -> int:
        return sum(self.failed.values())

    def merge(self, other: ScrapeSummary) -> ScrapeSummary:
        """Adds `other`'s counts to this summary and returns it."""
        self.kept += other.kept
        self.skipped = dict(Counter(self.skipped) + Counter(other.skipped))
        self.failed = dict(Counter(self.failed) + Counter(other.failed))
        self.notes += other.notes
        self.listings += other.listings
        self.posts += other.posts
        return self

    def line(self, what: str) -> str:
        """One summary line, e.g. `scrape reddit: 12 kept, 3 skipped (...), 1 failed (...) -> out`."""

        def why(d: dict[str, int]) -> str:
            return ", ".join(f"{n} {r}" for r, n in sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"

        return (
            f"{what}: {self.kept} kept, {self.total_skipped} skipped ({why(self.skipped)}), "
            f"{self.total_failed} failed ({why(self.failed)}) -> {self.out}"
        )


class Runner:
    """Downloads tasks with bounded concurrency and records every attempt in the manifest.

    Args:
        out: Path. Output folder.
        cfg: ScrapeConfig. `workers`, `max_bytes`, timeouts, `retries`, `backoff`, `delay`,
            `url_budget` (seconds per URL across its tries), `respect_noai`.
        description: str. Progress bar title.
        total: int or None. Progress total if known.
        throttle: bool, default False. Space requests per host by `cfg.delay` seconds.
        secrets: sequence of str. Values redacted from every recorded message.
        executor: Executor or None, default None. A Ray executor runs the downloads by host
            (`download_host`) when the listing is done; None (or local) = the thread pool.
    """

    def __init__(
        self,
        out: Path,
        cfg: ScrapeConfig,
        description: str,
        total: int | None = None,
        throttle: bool = False,
        secrets: tuple[str, ...] | list[str] = (),
        executor: Executor | None = None,
    ):
        self.out = Path(out)
        self.cfg = cfg
        self.secrets = tuple(s for s in secrets if s)
        self.summary = ScrapeSummary(out=self.out)
        self.manifest = Manifest(self.out, lock=True)
        self.throttle = HostThrottle(cfg.delay) if throttle else None
        self._local = threading.local()
        self._sessions: list[Any] = []
        self._pool = ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="imgclf-dl")
        self._inflight: dict[Future, Task] = {}
        self._progress_cm = progress(description, total)
        self._advance = self._progress_cm.__enter__()
        self._queued: set[tuple[str, str]] = set()
        self._executor = executor if executor is not None and executor.name == "ray" else None
        self._hosts: dict[str, list[Task]] = {}  # with a cluster: the URLs of each host, in order

    # ------------------------------------------------------------------ counting
    def _count(self, status: str, reason: str) -> None:
        if status == "kept":
            self.summary.kept += 1
        else:
            d = self.summary.skipped if status == "skipped" else self.summary.failed
            d[reason] = d.get(reason, 0) + 1
        s = self.summary
        self._advance(status=f"kept {s.kept}  skipped {s.total_skipped}  failed {s.total_failed}")

    def _provenance(self, task: Task) -> dict[str, Any]:
        return {"url": redact(task.url, self.secrets), "label": task.label, "kind": task.kind, "source": task.source}

    def skip(self, task: Task, reason: str, detail: str = "", record: bool = True) -> None:
        """Counts URL `task` as skipped for `reason` (and records it in the manifest if `record`)."""
        if record:
            self.manifest.record_url(
                **self._provenance(task), status="skipped", reason=reason, detail=redact(detail, self.secrets)
            )
        self._count("skipped", reason)

    def skip_post(self, reason: str) -> None:
        """Counts a post-level skip (the post itself is recorded by `Manifest.record_post`)."""
        self._count("skipped", reason)

    def fail(self, task: Task, reason: str, detail: str = "") -> None:
        """Counts and records URL `task` as failed for `reason`."""
        self.manifest.record_url(
            **self._provenance(task), status="failed", reason=reason, detail=redact(detail, self.secrets)
        )
        self._count("failed", reason)

    def note(self, text: str) -> None:
        """Adds a note for the final summary and prints it as a warning now."""
        text = redact(text, self.secrets)
        self.summary.notes.append(text)
        warn(escape(text))

    # ------------------------------------------------------------------ downloads
    def _session(self) -> Any:
        s = getattr(self._local, "session", None)
        if s is None:
            s = new_session(self.cfg.user_agent, pool=4)
            self._local.session = s
            self._sessions.append(s)
        return s

    def _download(self, task: Task) -> UrlOutcome:
        """The map, in a pool thread: this thread's pooled session and the run's throttle."""
        return download_task(task, self.cfg, session=self._session(), throttle=self.throttle)

    def is_done(self, url: str, label: str) -> bool:
        """True if the manifest has `url` settled for `label` (see `Manifest.is_settled`)."""
        return self.manifest.is_settled(redact(url, self.secrets), label, respect_noai=self.cfg.respect_noai)

    def submit(self, task: Task) -> str:
        """Queues `task` unless already done or queued; blocks while `2 * workers` are in flight.

        Returns:
            str: `"queued"`, `"done"` (the manifest has it done: counted as skipped
            `already_done`) or `"repeat"` (already seen in this run: not counted again).
        """
        key = (redact(task.url, self.secrets), task.label)
        if key in self._queued:
            return "repeat"
        self._queued.add(key)
        if self.manifest.is_settled(*key, respect_noai=self.cfg.respect_noai):
            self.skip(task, "already_done", record=False)
            return "done"
        if self._executor is not None:
            self._hosts.setdefault(host_key(task.url), []).append(task)
            return "queued"
        self._inflight[self._pool.submit(self._download, task)] = task
        while len(self._inflight) >= 2 * self.cfg.workers:
            self._collect(block=True)
        return "queued"

    def mark_seen(self, url: str, label: str) -> bool:
        """Marks `(url, label)` as handled in this run; returns False if it already was."""
        key = (redact(url, self.secrets), label)
        if key in self._queued:
            return False
        self._queued.add(key)
        return True

    def store(self, outcome: UrlOutcome) -> None:
        """Stores and records an outcome obtained outside the pool (e.g. a seed URL that was an image)."""
        self._store(outcome)

    def _collect(self, block: bool) -> None:
        if not self._inflight:
            return
        done, _ = wait(list(self._inflight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for fut in done:
            self._inflight.pop(fut)
            self._store(fut.result())

    def _store(self, outcome: UrlOutcome) -> None:
        """The apply step of one outcome: count and record a failure, or store the image and record it."""
        task, res = outcome.task, outcome.image
        if res is None:
            if outcome.reason in POLICY_SKIPS:  # the site's wish, not a failure
                self.skip(task, outcome.reason, outcome.detail)
            else:
                self.fail(task, outcome.reason, outcome.detail)
            return
        prov = self._provenance(task)
        facts = dict(
            final_url=redact(res.final_url, self.secrets),
            bytes=res.bytes,
            sha256=res.sha256,
            width=res.width,
            height=res.height,
        )
        existing = self.manifest.stored_path(res.sha256)
        if existing is not None:
            self.manifest.record_url(
                **prov,
                **facts,
                status="skipped",
                reason="duplicate_content",
                detail=f"same content already stored as {existing}",
                path=existing,
            )
            self._count("skipped", "duplicate_content")
            return
        rel = Path(task.label) / res.file_name
        dest = self.out / rel
        if not dest.is_file():  # a file already there is the same content (a run killed before its row)
            atomic_write_bytes(dest, res.data)
        self.manifest.record_url(**prov, **facts, status="kept", reason="", path=rel.as_posix())
        self._count("kept", "")

    def poll(self) -> None:
        """Stores the downloads that have finished, without waiting."""
        self._collect(block=False)

    def _run_hosts(self) -> None:
        """With a cluster: one task per host (`download_host`), outcomes stored as hosts finish."""
        jobs = []
        for host, tasks in sorted(self._hosts.items()):
            delay = self.throttle.delay_for(tasks[0].url) if self.throttle is not None else 0.0
            jobs.append(HostJob(host, tuple(tasks), delay, wait_first=delay))
        self._hosts = {}
        for outcomes in cast(Executor, self._executor).map(partial(download_host, cfg=self.cfg), jobs):
            for outcome in outcomes:
                self._store(outcome)

    def close(self) -> ScrapeSummary:
        """Waits for every queued download, closes everything and returns the summary."""
        try:
            if self._hosts:
                self._run_hosts()
            while self._inflight:
                self._collect(block=True)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._progress_cm.__exit__(None, None, None)
            for s in self._sessions:
                s.close()
            self.manifest.close()
        return self.summary

    def abort(self) -> None:
        """Stops without waiting for queued downloads (after an error or Ctrl-C)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._progress_cm.__exit__(None, None, None)
        self.manifest.close()
