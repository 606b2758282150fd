"""The scrape manifest: one SQLite row per attempted URL, in `<out>/_manifest.sqlite`.

The manifest is the provenance of every image (where it came from, who posted it, when it was
fetched) and what makes a rerun resume: a URL already done (kept, or rejected for a reason
that will not change) is not fetched again, and content already stored (same sha256) is not
stored twice. SQLite runs in WAL mode and every row is committed on its own, so a `kill -9`
loses at most the row being written; the image file is written atomically *before* its row,
and a rerun that finds the file already there just records it.

A lock file (`<out>/_scrape.lock`, `fcntl.flock`) keeps two scrapers from writing to the same
folder at once; the kernel releases it when a process dies, even by `kill -9`.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from imgclf.errors import DataError, ScrapeError

MANIFEST_NAME = "_manifest.sqlite"
LOCK_NAME = "_scrape.lock"

#: Columns of the `attempts` table, in order (see `Manifest.record`).
COLUMNS: tuple[str, ...] = (
    "url", "label", "kind", "source", "post_id", "title", "author", "permalink", "final_url",
    "status", "reason", "detail", "bytes", "sha256", "width", "height", "path", "time",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id        INTEGER PRIMARY KEY,
    url       TEXT NOT NULL,     -- the URL attempted (credentials removed)
    label     TEXT NOT NULL,     -- class folder
    kind      TEXT NOT NULL,     -- image | page | post
    source    TEXT,              -- r/<subreddit> or the page the URL was found on
    post_id   TEXT,              -- Reddit post id (base36)
    title     TEXT,
    author    TEXT,
    permalink TEXT,
    final_url TEXT,              -- after redirects
    status    TEXT NOT NULL,     -- kept | skipped | failed
    reason    TEXT,              -- why skipped / failed (html, truncated, nsfw, ...); '' when kept
    detail    TEXT,
    bytes     INTEGER,
    sha256    TEXT,
    width     INTEGER,           -- pixels
    height    INTEGER,           -- pixels
    path      TEXT,              -- stored file, relative to the output folder
    time      TEXT NOT NULL,     -- UTC, ISO 8601
    UNIQUE (url, label)
);
CREATE INDEX IF NOT EXISTS attempts_sha256 ON attempts (sha256);
"""


def manifest_path(out: str | os.PathLike) -> Path:
    """Returns the manifest file of an output folder."""
    return Path(out) / MANIFEST_NAME


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def remove_stale_temp_files(out: Path) -> int:
    """Deletes temporary files a killed writer left in `<out>/<label>/` (`.<name>.<random>.tmp`).

    Only call this while holding the folder's lock (see `Manifest(lock=True)`).

    Returns:
        int: number of files removed.
    """
    n = 0
    if not out.is_dir():
        return 0
    for d in out.iterdir():
        if d.is_dir() and not d.name.startswith(("_", ".")):
            for f in d.iterdir():
                if f.name.startswith(".") and f.name.endswith(".tmp") and f.is_file():
                    f.unlink(missing_ok=True)
                    n += 1
    return n


class Manifest:
    """The SQLite manifest of one output folder. Use from one thread (the scraper's main thread).

    Args:
        out: path. The output folder (created if missing when `lock` is True).
        lock: bool, default True. Take the folder's exclusive lock and remove temporary files
            left by a killed run; False opens read-only (for `imgclf scrape status`).

    Raises:
        ScrapeError: if another scraper holds the lock.
        DataError: if `lock` is False and there is no manifest.
    """

    def __init__(self, out: str | os.PathLike, lock: bool = True):
        self.out = Path(out)
        self.path = manifest_path(self.out)
        self._lock_fd: int | None = None
        if lock:
            import fcntl

            self.out.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ScrapeError(
                    f"another scrape is writing to {self.out}", "wait for it to finish, or use another --out folder"
                ) from None
            self._lock_fd = fd
            remove_stale_temp_files(self.out)
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            self.db.commit()
        else:
            if not self.path.is_file():
                raise DataError(f"no scrape manifest in {self.out} ({MANIFEST_NAME} not found)",
                                "give the --out folder of `imgclf scrape reddit|web`")
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        self.db.row_factory = sqlite3.Row

    # ------------------------------------------------------------------ queries
    def get(self, url: str, label: str) -> sqlite3.Row | None:
        """Returns the row of `(url, label)`, or None."""
        return self.db.execute("SELECT * FROM attempts WHERE url=? AND label=?", (url, label)).fetchone()

    def is_done(self, url: str, label: str) -> bool:
        """True if `url` was already kept, or rejected for a reason a retry would not change.

        Transient failures (timeouts, connection errors, HTTP 429 / 5xx) and post-level skips
        (NSFW, self post...) are tried again on a rerun.
        """
        from imgclf.scrape.download import is_transient

        row = self.get(url, label)
        if row is None:
            return False
        if row["status"] == "kept":
            return bool(row["path"]) and (self.out / row["path"]).is_file()
        if row["status"] == "failed":
            return not is_transient(row["reason"] or "")
        return row["status"] == "skipped" and row["reason"] == "duplicate_content"

    def stored_path(self, sha256: str) -> str | None:
        """Returns the stored relative path of content `sha256` if its file exists, else None."""
        for row in self.db.execute("SELECT path FROM attempts WHERE sha256=? AND status='kept'", (sha256,)):
            if row["path"] and (self.out / row["path"]).is_file():
                return row["path"]
        return None

    # ------------------------------------------------------------------ writes
    def record(self, **values: Any) -> None:
        """Inserts or replaces the row of `(url, label)` and commits.

        Args:
            **values: column values (see `COLUMNS`); `url`, `label`, `kind` and `status` are
                required, `time` defaults to now (UTC).
        """
        values.setdefault("time", _now())
        row = {c: values.get(c) for c in COLUMNS}
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown manifest columns {sorted(unknown)}")
        self.db.execute(
            f"INSERT OR REPLACE INTO attempts ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
            [row[c] for c in COLUMNS],
        )
        self.db.commit()

    def close(self) -> None:
        """Closes the database and releases the lock."""
        try:
            self.db.close()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------- status
@dataclass
class ManifestStatus:
    """Counts from a manifest, for `imgclf scrape status`.

    Attributes:
        path: Path. The manifest file.
        total: int. Rows (attempted URLs, pages and skipped posts).
        by_label: dict label -> {status -> count}, images and posts only (pages excluded).
        by_source: dict source -> {status -> count}.
        by_reason: dict (status, reason) -> count, for skipped and failed rows.
        files: dict label -> number of image files on disk in `<out>/<label>/`.
        last_time: str or None. Time of the newest row.
    """

    path: Path
    total: int = 0
    by_label: dict[str, dict[str, int]] = field(default_factory=dict)
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    by_reason: dict[tuple[str, str], int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    last_time: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-friendly dict."""
        return {
            "manifest": str(self.path),
            "total": self.total,
            "by_label": self.by_label,
            "by_source": self.by_source,
            "by_reason": [{"status": s, "reason": r, "count": n} for (s, r), n in sorted(self.by_reason.items())],
            "files": self.files,
            "last_time": self.last_time,
        }


def summarize(out: str | os.PathLike) -> ManifestStatus:
    """Summarizes the manifest of an output folder by label, source and reason.

    Args:
        out: path. A folder written by `scrape_reddit` / `scrape_web`.

    Returns:
        ManifestStatus.

    Raises:
        DataError: if the folder has no manifest.
    """
    m = Manifest(out, lock=False)
    try:
        st = ManifestStatus(path=m.path)
        db = m.db
        st.total = db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        st.last_time = db.execute("SELECT MAX(time) FROM attempts").fetchone()[0]
        for label, status, n in db.execute(
            "SELECT label, status, COUNT(*) FROM attempts WHERE kind != 'page' GROUP BY label, status"
        ):
            st.by_label.setdefault(label, {})[status] = n
        for source, status, n in db.execute(
            "SELECT COALESCE(source, ''), status, COUNT(*) FROM attempts WHERE kind != 'page' GROUP BY 1, 2"
        ):
            st.by_source.setdefault(source, {})[status] = n
        for status, reason, n in db.execute(
            "SELECT status, COALESCE(reason, ''), COUNT(*) FROM attempts WHERE status IN ('skipped', 'failed') GROUP BY 1, 2"
        ):
            st.by_reason[(status, reason)] = n
        for label in st.by_label:
            d = Path(out) / label
            st.files[label] = sum(1 for f in d.iterdir() if f.is_file() and not f.name.startswith(".")) if d.is_dir() else 0
        return st
    finally:
        m.close()
