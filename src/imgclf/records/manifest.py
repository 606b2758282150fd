"""The scrape manifest, `<out>/_manifest.sqlite`: every URL tried and every post that pointed at one.

A stage record: `imgclf scrape reddit|web` writes it (`Manifest`, `record_url`, `record_post`),
and every reader goes through this module: the scrapers' resume (`Manifest.is_settled`),
`imgclf scrape status` (`summarize`), clean's and split's provenance groups and the audit's
noise per source (`file_provenance`, `Manifest(out, lock=False)`). A missing manifest (when
read), a file that is not a readable SQLite manifest, or one of a newer schema than this
imgclf knows is a `DataError` naming the file.

The manifest is the provenance of every image (where it came from, which posts linked it, when
it was fetched) and what makes a rerun resume. It has three tables (schema version 2, stored in
SQLite's `PRAGMA user_version`):

- `urls`: one row per `(url, label)` tried, with its status (`kept`, `skipped`, `failed`;
  pages: `crawled`), reason and the stored file. Only a request for that URL writes its row.
- `posts`: one row per `(post_id, label)` seen in a Reddit listing (or as the parent of a
  crosspost): subreddit, permalink, title, author, crosspost parent, the listing that first
  gave it, and its own status (`taken`, or `skipped` with a post-level reason such as `nsfw`).
  A post-level skip is written here and never touches the `urls` row of its URL.
- `post_urls`: which post pointed at which URL (gallery position kept), so reposts and
  crossposts of one image keep every post id, the provenance a split needs to keep them together.

A view `attempts` (one row per URL with its first post) keeps queries written for schema 1
working. A rerun makes no request for a settled URL (`Manifest.is_settled`) and still records
new posts that point to it.

Every write is committed on its own transaction in WAL mode, so a `kill -9` loses at most the
row being written; the image file is written atomically *before* its row, and a rerun that
finds the file already there just records it. A manifest of schema 1 (one `attempts` table keyed
by `(url, label)`) is migrated in place when a scrape opens it: first a backup copy is written
atomically (`_manifest.v1-backup.sqlite`), then the migration runs as one SQLite transaction,
so a crash leaves either the old or the new schema, never a mix.

A lock file (`<out>/_scrape.lock`, `fcntl.flock`) keeps two scrapers from writing to the same
folder at once; the kernel releases it when a process dies, even by `kill -9`.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from imgclf.errors import DataError, ScrapeError
from imgclf.fsutil import atomic_write_bytes
from imgclf.net.errors import is_transient

MANIFEST_NAME = "_manifest.sqlite"
LOCK_NAME = "_scrape.lock"
#: Copy of a schema-1 manifest written before it is migrated.
BACKUP_V1_NAME = "_manifest.v1-backup.sqlite"

#: Current schema version (`PRAGMA user_version`); 0 with an `attempts` table is schema 1.
SCHEMA_VERSION = 2

#: Columns of the `urls` table a caller may set (see `Manifest.record_url`).
URL_COLUMNS: tuple[str, ...] = (
    "url",
    "label",
    "kind",
    "source",
    "final_url",
    "status",
    "reason",
    "detail",
    "bytes",
    "sha256",
    "width",
    "height",
    "path",
)

#: Columns of the `posts` table a caller may set (see `PostRecord`).
POST_COLUMNS: tuple[str, ...] = (
    "post_id",
    "label",
    "subreddit",
    "permalink",
    "title",
    "author",
    "crosspost_parent",
    "created_utc",
    "listing",
    "status",
    "reason",
)

#: Post fields `file_provenance` gives for each post behind a file.
_POST_KEYS: tuple[str, ...] = ("post_id", "subreddit", "permalink", "title", "author", "crosspost_parent")

#: URL-level skip reasons that settle a URL (no request on a rerun) while the setting that
#: caused them stays the same: `noai` only while `respect_noai` is on.
POLICY_SKIPS: frozenset[str] = frozenset({"noai"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS urls (
    id         INTEGER PRIMARY KEY,
    url        TEXT NOT NULL,     -- the URL tried (credentials removed)
    label      TEXT NOT NULL,     -- class folder
    kind       TEXT NOT NULL,     -- image | page
    source     TEXT,              -- r/<subreddit> of the first post, or the page the URL was found on
    final_url  TEXT,              -- after redirects
    status     TEXT NOT NULL,     -- kept | skipped | failed (pages: crawled)
    reason     TEXT,              -- why skipped / failed (html, truncated, robots, noai, ...); '' when kept
    detail     TEXT,
    bytes      INTEGER,
    sha256     TEXT,
    width      INTEGER,           -- pixels
    height     INTEGER,           -- pixels
    path       TEXT,              -- stored file, relative to the output folder
    first_time TEXT NOT NULL,     -- UTC, ISO 8601: first recorded
    time       TEXT NOT NULL,     -- UTC, ISO 8601: last recorded
    UNIQUE (url, label)
);
CREATE INDEX IF NOT EXISTS urls_sha256 ON urls (sha256);
CREATE TABLE IF NOT EXISTS posts (
    id               INTEGER PRIMARY KEY,
    post_id          TEXT NOT NULL,  -- Reddit post id (base36, no t3_ prefix)
    label            TEXT NOT NULL,
    subreddit        TEXT,
    permalink        TEXT,           -- https://www.reddit.com/r/...
    title            TEXT,
    author           TEXT,
    crosspost_parent TEXT,           -- id of the post this one crossposts, or NULL
    created_utc      REAL,           -- seconds since the epoch, as Reddit gives it
    listing          TEXT,           -- first listing: top/all, new, search 'q'/all, crosspost parent of <id>
    status           TEXT NOT NULL,  -- taken | skipped
    reason           TEXT,           -- post-level skip: nsfw, removed, self_post, video, no_image
    first_time       TEXT NOT NULL,
    time             TEXT NOT NULL,
    UNIQUE (post_id, label)
);
CREATE TABLE IF NOT EXISTS post_urls (
    post_id  TEXT NOT NULL,
    label    TEXT NOT NULL,
    url      TEXT NOT NULL,
    position INTEGER NOT NULL DEFAULT 0,  -- order in a gallery
    PRIMARY KEY (post_id, label, url)
);
CREATE INDEX IF NOT EXISTS post_urls_url ON post_urls (url, label);
CREATE VIEW IF NOT EXISTS attempts AS
SELECT u.url, u.label, u.kind, u.source, p.post_id, p.title, p.author, p.permalink, u.final_url,
       u.status, u.reason, u.detail, u.bytes, u.sha256, u.width, u.height, u.path, u.time
FROM urls u LEFT JOIN posts p ON p.id = (
    SELECT p2.id FROM post_urls l JOIN posts p2 ON p2.post_id = l.post_id AND p2.label = l.label
    WHERE l.url = u.url AND l.label = u.label ORDER BY p2.id LIMIT 1);
"""


def manifest_path(out: str | os.PathLike) -> Path:
    """Returns the manifest file of an output folder."""
    return Path(out) / MANIFEST_NAME


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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


@dataclass
class PostRecord:
    """One Reddit post as the manifest keeps it (see the `posts` table).

    Attributes:
        post_id: str. Base36 id without the `t3_` prefix.
        label: str. Class folder.
        subreddit: str or None.
        permalink: str or None. Full URL, `https://www.reddit.com/r/...`.
        title: str or None.
        author: str or None. `None` for deleted accounts.
        crosspost_parent: str or None. Id of the post this one crossposts.
        created_utc: float or None. Seconds since the epoch.
        listing: str or None. The listing that first gave it (e.g. `"top/all"`).
        status: str, default `"taken"`. `"taken"` or `"skipped"`.
        reason: str or None. The post-level skip reason (`nsfw`, `removed`, ...).
    """

    post_id: str
    label: str
    subreddit: str | None = None
    permalink: str | None = None
    title: str | None = None
    author: str | None = None
    crosspost_parent: str | None = None
    created_utc: float | None = None
    listing: str | None = None
    status: str = "taken"
    reason: str | None = None


def _table_exists(db: sqlite3.Connection, name: str, kind: str = "table") -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type=? AND name=?", (kind, name)).fetchone() is not None


def schema_version(db: sqlite3.Connection) -> int:
    """Returns the schema of an open manifest: 2 (current), 1 (an `attempts` table) or 0 (empty)."""
    v = db.execute("PRAGMA user_version").fetchone()[0]
    if v:
        return int(v)
    return 1 if _table_exists(db, "attempts") else 0


class Manifest:
    """The SQLite manifest of one output folder. Use from one thread (the scraper's main thread).

    Args:
        out: path. The output folder (created if missing when `lock` is True).
        lock: bool, default True. Take the folder's exclusive lock, remove temporary files left
            by a killed run and migrate a schema-1 manifest; False opens read-only (for
            `imgclf scrape status`, clean's provenance, the audit; a schema-1 manifest is
            migrated first, under the lock).

    Raises:
        ScrapeError: if another scraper holds the lock, or migrating a schema-1 manifest failed
            (the file is left unchanged).
        DataError: if `lock` is False and there is no manifest, the file is not a readable
            SQLite manifest, or it has a newer schema than this imgclf knows.
    """

    def __init__(self, out: str | os.PathLike, lock: bool = True):
        self.out = Path(out)
        self.path = manifest_path(self.out)
        self._lock_fd: int | None = None
        if lock:
            self._open_for_writing()
        else:
            self._open_read_only()
        self.db.row_factory = sqlite3.Row

    def _take_lock(self) -> None:
        """Takes the folder's exclusive lock (`LOCK_NAME`), or raises `ScrapeError` at once."""
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

    def _open_for_writing(self) -> None:
        """Locks the folder, removes stale temporary files, opens (creating or migrating) the database."""
        self._take_lock()
        try:
            remove_stale_temp_files(self.out)
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.DatabaseError as exc:
                raise self._unreadable(exc) from None
            self._upgrade()
        except BaseException:  # release the lock and the database, then let the error through
            self.close()
            raise

    def _open_read_only(self) -> None:
        """Opens an existing manifest read-only (a schema-1 manifest is migrated first, under the lock)."""
        if not self.path.is_file():
            raise DataError(
                f"no scrape manifest in {self.out} ({MANIFEST_NAME} not found)",
                "give the --out folder of `imgclf scrape reddit|web`",
            )
        self.db = self._connect_read_only()
        try:
            version = self._version()
            if version > SCHEMA_VERSION:
                self._too_new(version)
        except BaseException:
            self.db.close()
            raise
        if version < SCHEMA_VERSION:
            self.db.close()
            Manifest(self.out, lock=True).close()  # migrates
            self.db = self._connect_read_only()

    def _connect_read_only(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30, isolation_level=None)

    # ------------------------------------------------------------------ schema
    def _unreadable(self, exc: Exception) -> DataError:
        return DataError(
            f"{self.path} is not a readable scrape manifest ({exc})",
            "move it away and scrape again, or restore it from a backup",
        )

    def _version(self) -> int:
        try:
            return schema_version(self.db)
        except sqlite3.DatabaseError as exc:
            raise self._unreadable(exc) from None

    def _too_new(self, version: int) -> NoReturn:
        raise DataError(
            f"{self.path} has manifest schema {version}; this imgclf knows up to {SCHEMA_VERSION}",
            "upgrade imgclf, or use another --out folder",
        )

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """One SQLite transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _upgrade(self) -> None:
        version = self._version()
        if version > SCHEMA_VERSION:
            self._too_new(version)
        if version == SCHEMA_VERSION:
            return
        if version == 1:
            # Backup first (atomic: temporary file + rename), then migrate in one transaction.
            self.db.row_factory = None
            atomic_write_bytes(self.out / BACKUP_V1_NAME, self.db.serialize())
        try:
            with self._tx():
                if version == 1:
                    self.db.execute("ALTER TABLE attempts RENAME TO attempts_v1")
                for stmt in _SCHEMA.split(";\n"):
                    if stmt.strip():
                        self.db.execute(stmt)
                if version == 1:
                    self._migrate_v1()
                    self.db.execute("DROP TABLE attempts_v1")
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            if version == 1:
                raise ScrapeError(
                    f"could not migrate {self.path} to manifest schema {SCHEMA_VERSION} ({exc}); the file is unchanged",
                    f"a copy is in {self.out / BACKUP_V1_NAME}; move the manifest away to start a new one",
                ) from None
            raise DataError(
                f"could not create the scrape manifest {self.path} ({exc})",
                "check that the folder is writable, or use another --out folder",
            ) from None

    def _migrate_v1(self) -> None:
        """Copies schema-1 rows (`attempts_v1`) into `urls`, `posts` and `post_urls`."""
        db = self.db
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM attempts_v1 ORDER BY id").fetchall()
        for r in rows:
            kind = r["kind"]
            source = r["source"] or ""
            if kind != "post":
                db.execute(
                    "INSERT OR IGNORE INTO urls (url, label, kind, source, final_url, status, reason, detail, bytes,"
                    " sha256, width, height, path, first_time, time) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        r["url"],
                        r["label"],
                        kind,
                        r["source"],
                        r["final_url"],
                        r["status"],
                        r["reason"],
                        r["detail"],
                        r["bytes"],
                        r["sha256"],
                        r["width"],
                        r["height"],
                        r["path"],
                        r["time"],
                        r["time"],
                    ),
                )
            if not r["post_id"]:
                continue
            skipped = kind == "post"
            db.execute(
                "INSERT INTO posts (post_id, label, subreddit, permalink, title, author, listing, status, reason,"
                " first_time, time) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (post_id, label) DO UPDATE SET"
                " time = MAX(time, excluded.time)",
                (
                    r["post_id"],
                    r["label"],
                    source[2:] if source.startswith("r/") else None,
                    r["permalink"],
                    r["title"],
                    r["author"],
                    "schema 1",
                    "skipped" if skipped else "taken",
                    r["reason"] if skipped else None,
                    r["time"],
                    r["time"],
                ),
            )
            url = r["url"] or ""
            if not skipped or (url.startswith(("http://", "https://")) and url != r["permalink"]):
                db.execute(
                    "INSERT OR IGNORE INTO post_urls (post_id, label, url, position) VALUES (?,?,?,?)",
                    (r["post_id"], r["label"], url, 0),
                )

    # ------------------------------------------------------------------ queries
    def get(self, url: str, label: str) -> sqlite3.Row | None:
        """Returns the `urls` row of `(url, label)`, or None."""
        return self.db.execute("SELECT * FROM urls WHERE url=? AND label=?", (url, label)).fetchone()

    def is_settled(self, url: str, label: str, respect_noai: bool = True) -> bool:
        """True if a rerun must not request `url` again for `label`.

        Settled: kept (and its file still exists), stored content found again under this URL
        (`duplicate_content`), rejected for a reason a retry would not change (`html`,
        `truncated`, `decompression_bomb`, `too_large`, `http_404`, ...), or refused by a
        site's `noai` directive while `respect_noai` is on. Not settled: transient failures
        (timeouts, connection errors, HTTP 429 / 5xx, see `imgclf.net.errors.is_transient`),
        robots.txt skips (the rules may change; robots.txt is read again each run) and URLs
        never tried.

        Args:
            url: str. The URL (credentials removed).
            label: str. The class folder.
            respect_noai: bool, default True. Whether `noai` skips count as settled.

        Returns:
            bool.
        """
        row = self.get(url, label)
        if row is None:
            return False
        status, reason = row["status"], row["reason"] or ""
        if status == "kept":
            return bool(row["path"]) and (self.out / row["path"]).is_file()
        if status == "failed":
            return not is_transient(reason)
        if status == "skipped":
            if reason == "duplicate_content":
                return True
            return reason in POLICY_SKIPS and respect_noai
        return False

    def is_done(self, url: str, label: str) -> bool:
        """Same as `is_settled(url, label)` (the name of schema 1)."""
        return self.is_settled(url, label)

    def stored_path(self, sha256: str) -> str | None:
        """Returns the stored relative path of content `sha256` if its file exists, else None."""
        for row in self.db.execute("SELECT path FROM urls WHERE sha256=? AND status='kept'", (sha256,)):
            if row["path"] and (self.out / row["path"]).is_file():
                return row["path"]
        return None

    def known_posts(self, label: str) -> set[str]:
        """Returns the ids of every post recorded for `label`."""
        return {r[0] for r in self.db.execute("SELECT post_id FROM posts WHERE label=?", (label,))}

    def posts_for_url(self, url: str, label: str) -> list[sqlite3.Row]:
        """Returns the `posts` rows of every post that pointed at `(url, label)`, oldest first."""
        return self.db.execute(
            "SELECT p.* FROM post_urls l JOIN posts p ON p.post_id = l.post_id AND p.label = l.label"
            " WHERE l.url=? AND l.label=? ORDER BY p.id",
            (url, label),
        ).fetchall()

    # ------------------------------------------------------------------ writes
    def record_url(self, **values: Any) -> None:
        """Inserts or updates the `urls` row of `(url, label)` and commits.

        Only the code that requested the URL (or decided not to, for robots.txt / scheme
        reasons) calls this; post-level skips go to `record_post`. `first_time` is kept.

        Args:
            **values: column values (see `URL_COLUMNS`); `url`, `label`, `kind` and `status`
                are required.

        Raises:
            ValueError: unknown column names (a programming error).
        """
        unknown = set(values) - set(URL_COLUMNS)
        if unknown:
            raise ValueError(f"unknown manifest columns {sorted(unknown)}")
        row = {c: values.get(c) for c in URL_COLUMNS}
        now = _now()
        cols = ", ".join(URL_COLUMNS)
        updates = ", ".join(f"{c}=excluded.{c}" for c in URL_COLUMNS if c not in ("url", "label"))
        self.db.execute(
            f"INSERT INTO urls ({cols}, first_time, time) VALUES ({', '.join('?' * len(URL_COLUMNS))}, ?, ?)"
            f" ON CONFLICT (url, label) DO UPDATE SET {updates}, time=excluded.time",
            [row[c] for c in URL_COLUMNS] + [now, now],
        )

    def record_post(self, post: PostRecord, urls: list[str] | tuple[str, ...] = ()) -> None:
        """Records one post and the URLs it points at, in one transaction.

        An existing row of `(post_id, label)` keeps its `first_time` and first `listing`; its
        status, reason and metadata take the new values. Links already recorded stay.

        Args:
            post: PostRecord.
            urls: sequence of str. The post's image URLs in order (gallery order kept in
                `post_urls.position`).
        """
        now = _now()
        vals = [getattr(post, c) for c in POST_COLUMNS]
        keep_first = ("post_id", "label", "listing")
        updates = ", ".join(f"{c}=excluded.{c}" for c in POST_COLUMNS if c not in keep_first)
        with self._tx():
            self.db.execute(
                f"INSERT INTO posts ({', '.join(POST_COLUMNS)}, first_time, time)"
                f" VALUES ({', '.join('?' * len(POST_COLUMNS))}, ?, ?)"
                f" ON CONFLICT (post_id, label) DO UPDATE SET {updates}, time=excluded.time",
                vals + [now, now],
            )
            self.db.executemany(
                "INSERT OR IGNORE INTO post_urls (post_id, label, url, position) VALUES (?, ?, ?, ?)",
                [(post.post_id, post.label, u, i) for i, u in enumerate(urls)],
            )

    def close(self) -> None:
        """Closes the database and releases the lock."""
        try:
            db = getattr(self, "db", None)
            if db is not None:
                db.close()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------- provenance
@dataclass
class FileProvenance:
    """Where one stored image came from (see `file_provenance`).

    Attributes:
        path: str. The file, relative to the output folder (`<label>/<sha256[:16]><ext>`).
        label: str.
        urls: list of str. Every URL whose content is this file (the first kept, then
            `duplicate_content` ones).
        posts: list of dict. Every post that pointed at one of those URLs: `post_id`,
            `subreddit`, `permalink`, `title`, `author`, `crosspost_parent`.
        sources: list of str. `r/<subreddit>` or pages the URLs were found on.
    """

    path: str
    label: str
    urls: list[str] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def file_provenance(out: str | os.PathLike) -> dict[str, FileProvenance]:
    """Reads, for every stored image of a scrape folder, its URLs and the posts that linked it.

    Reposts and crossposts of one image share a file (same content) or a URL; both are
    followed, so a split can keep every group of related images on one side.

    Args:
        out: path. A folder written by `scrape_reddit` / `scrape_web`.

    Returns:
        dict: relative file path -> FileProvenance.

    Raises:
        DataError: if the folder has no manifest, or it is unreadable or of a newer schema.
    """
    m = Manifest(out, lock=False)
    try:
        return _file_provenance(m)
    except sqlite3.DatabaseError as exc:
        raise m._unreadable(exc) from None
    finally:
        m.close()


def _file_provenance(m: Manifest) -> dict[str, FileProvenance]:
    result: dict[str, FileProvenance] = {}
    rows = m.db.execute(
        "SELECT url, label, path, source FROM urls WHERE kind='image' AND path IS NOT NULL AND path != ''"
        " AND status IN ('kept', 'skipped') ORDER BY id"
    ).fetchall()
    for r in rows:
        fp = result.setdefault(r["path"], FileProvenance(path=r["path"], label=r["label"]))
        fp.urls.append(r["url"])
        if r["source"] and r["source"] not in fp.sources:
            fp.sources.append(r["source"])
        for p in m.posts_for_url(r["url"], r["label"]):
            if all(q["post_id"] != p["post_id"] for q in fp.posts):
                fp.posts.append({k: p[k] for k in _POST_KEYS})
    return result


# ---------------------------------------------------------------------------------- status
@dataclass
class ManifestStatus:
    """Counts from a manifest, for `imgclf scrape status`.

    Attributes:
        path: Path. The manifest file.
        total: int. Rows: URLs tried (images and pages) plus posts.
        by_label: dict label -> {status -> count}: image URLs plus skipped posts (pages excluded).
        by_source: dict source -> {status -> count}, likewise.
        by_reason: dict (status, reason) -> count, for skipped and failed URLs and posts.
        posts: dict label -> number of posts recorded.
        shared_urls: int. URLs that more than one post pointed at.
        files: dict label -> number of image files on disk in `<out>/<label>/`.
        last_time: str or None. Time of the newest row.
    """

    path: Path
    total: int = 0
    by_label: dict[str, dict[str, int]] = field(default_factory=dict)
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    by_reason: dict[tuple[str, str], int] = field(default_factory=dict)
    posts: dict[str, int] = field(default_factory=dict)
    shared_urls: int = 0
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
            "posts": self.posts,
            "shared_urls": self.shared_urls,
            "files": self.files,
            "last_time": self.last_time,
        }


def summarize(out: str | os.PathLike) -> ManifestStatus:
    """Summarizes the manifest of an output folder by label, source and reason.

    Args:
        out: path. A folder written by `scrape_reddit` / `scrape_web` (a schema-1 manifest is
            migrated first, see the module docstring).

    Returns:
        ManifestStatus.

    Raises:
        DataError: if the folder has no manifest, or it is unreadable or of a newer schema.
    """
    m = Manifest(out, lock=False)
    try:
        st = _counts(m.db, ManifestStatus(path=m.path))
    except sqlite3.DatabaseError as exc:
        raise m._unreadable(exc) from None
    finally:
        m.close()
    for label in set(st.by_label) | set(st.posts):
        d = Path(out) / label
        st.files[label] = sum(1 for f in d.iterdir() if f.is_file() and not f.name.startswith(".")) if d.is_dir() else 0
    return st


#: Image URLs and skipped posts, as `(label, source, status, reason)` rows (pages left out).
_COUNTED = (
    "SELECT label, COALESCE(source, '') AS source, status, COALESCE(reason, '') AS reason"
    " FROM urls WHERE kind != 'page'"
    " UNION ALL SELECT label, 'r/' || COALESCE(subreddit, ''), status, COALESCE(reason, '')"
    " FROM posts WHERE status = 'skipped'"
)
#: Skipped and failed URLs and skipped posts, as `(status, reason)` rows.
_REASONS = (
    "SELECT status, COALESCE(reason, '') AS reason FROM urls WHERE status IN ('skipped', 'failed')"
    " UNION ALL SELECT status, COALESCE(reason, '') FROM posts WHERE status = 'skipped'"
)


def _counts(db: sqlite3.Connection, st: ManifestStatus) -> ManifestStatus:
    """Fills `st`'s counts from the database (everything but `files`)."""
    n_urls = db.execute("SELECT COUNT(*) FROM urls").fetchone()[0]
    n_posts = db.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
    st.total = n_urls + n_posts
    st.last_time = db.execute(
        "SELECT MAX(t) FROM (SELECT MAX(time) AS t FROM urls UNION ALL SELECT MAX(time) FROM posts)"
    ).fetchone()[0]
    for label, status, n in db.execute(f"SELECT label, status, COUNT(*) FROM ({_COUNTED}) GROUP BY 1, 2"):
        st.by_label.setdefault(label, {})[status] = n
    for source, status, n in db.execute(f"SELECT source, status, COUNT(*) FROM ({_COUNTED}) GROUP BY 1, 2"):
        st.by_source.setdefault(source, {})[status] = n
    for status, reason, n in db.execute(f"SELECT status, reason, COUNT(*) FROM ({_REASONS}) GROUP BY 1, 2"):
        st.by_reason[(status, reason)] = n
    for label, n in db.execute("SELECT label, COUNT(*) FROM posts GROUP BY 1"):
        st.posts[label] = n
    st.shared_urls = db.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM post_urls GROUP BY url, label HAVING COUNT(*) > 1)"
    ).fetchone()[0]
    return st
