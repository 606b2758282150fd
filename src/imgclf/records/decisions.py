"""The review decisions database (`DIR/_reports/decisions.sqlite`): schema, writer, reader.

A person's decisions about images are data, never edits of the images. `imgclf review` appends
each one, at once and durably, to `DIR/_reports/decisions.sqlite` (`DecisionLog`);
`imgclf clean SRC --out DIR` (and so `imgclf run`) reads them back (`read_decisions`) and
replays them on its output (`imgclf.clean.replay.plan_replay`); `imgclf audit` reads them to
leave decided images out. This module is the one writer and the one reader of that file (the
writer of a file is also its reader, docs/architecture.md).

Schema (`SCHEMA_VERSION` 1, stored as SQLite's `user_version`)::

    decisions(id INTEGER PRIMARY KEY,  -- order of the decisions (never reused)
              time TEXT,               -- ISO 8601, UTC, microseconds
              action TEXT,             -- reject | relabel | keep | undo
              path TEXT,               -- image path relative to DIR, "/"-separated
              label TEXT,              -- its class when decided ("" if none)
              new_label TEXT,          -- relabel: the new class; undo: the undone decision's
              view TEXT,               -- page it was decided on ("class:cat", "issues", ...)
              sha256 TEXT)             -- hex sha256 of the file's bytes

The table is append-only: triggers refuse `UPDATE` and `DELETE`. Every append is its own
transaction, committed in WAL mode with `synchronous=FULL` (the WAL is fsync'd at each commit),
so a decision is on disk before `append` returns -- and so before the page says "saved". A
database of a newer schema, or a file that is not a decisions database, is a `DataError`
naming the file.

What the rows mean (`DecisionIndex`, pure):

- Decisions are grouped per image: by sha256 of the file bytes (so they survive renames and
  relabel moves), or by path when a decision has no sha256 (a `_rejected/<reason>/` prefix of
  the path is ignored, `source_path`).
- Each image's decisions form a stack in time order; an `undo` pops the latest decision of its
  image. The effective decision of an image is the top of its stack (none when empty).
  `u` on the review page undoes the latest effective decision of all (`DecisionIndex.last`).

How `clean` applies the effective decisions is `imgclf.clean.replay`.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from imgclf.errors import DataError

#: File name of the database inside a stage folder's `_reports/`.
DB_NAME = "decisions.sqlite"

#: Reports folder of a stage folder (a `_` name is never a class, docs/architecture.md).
REPORTS_DIR = "_reports"

#: The database and the files SQLite keeps beside it; a clean rerun never deletes them.
DB_FILES: tuple[str, ...] = (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal")

#: Allowed values of `decisions.action`.
ACTIONS: tuple[str, ...] = ("reject", "relabel", "keep", "undo")

#: Actions a person takes on an image (`undo` takes back the latest one).
IMAGE_ACTIONS: tuple[str, ...] = ("reject", "relabel", "keep")

#: Reason folder of images rejected in review: `clean` moves them to `_rejected/manual/<path>`.
REASON_MANUAL = "manual"

#: Version of the schema written by this module (SQLite `user_version`).
SCHEMA_VERSION = 1

_COLUMNS = ("id", "time", "action", "path", "label", "new_label", "view", "sha256")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('reject', 'relabel', 'keep', 'undo')),
    path TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    new_label TEXT,
    view TEXT NOT NULL DEFAULT '',
    sha256 TEXT NOT NULL DEFAULT '',
    CHECK (action != 'relabel' OR (new_label IS NOT NULL AND new_label != ''))
);
CREATE INDEX IF NOT EXISTS decisions_sha256 ON decisions (sha256);
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
"""


# ------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Decision:
    """One row of the `decisions` table.

    Attributes:
        id: int. Order of the decision (increasing, never reused).
        time: str. When, ISO 8601 UTC (`2026-01-31T12:00:00.000000+00:00`).
        action: str. One of `ACTIONS`.
        path: str. Image path relative to the reviewed folder, "/"-separated.
        label: str. The image's class when decided ("" if it had none).
        new_label: str or None. `relabel`: the new class; `undo`: the undone decision's
            `new_label`; else None.
        view: str. Page it was taken on (`"class:cat"`, `"issues"`, `"duplicates"`...).
        sha256: str. Hex sha256 of the file's bytes ("" if unknown).
    """

    id: int
    time: str
    action: str
    path: str
    label: str = ""
    new_label: str | None = None
    view: str = ""
    sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The row as a JSON-ready dict (column name -> value)."""
        return {c: getattr(self, c) for c in _COLUMNS}


def database_path(root: str | os.PathLike) -> Path:
    """Returns `root/_reports/decisions.sqlite`, the decisions database of a stage folder.

    Args:
        root: path. The reviewed folder (usually `clean`'s output).

    Returns:
        Path (which may not exist yet).
    """
    return Path(root) / REPORTS_DIR / DB_NAME


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks of `chunk` bytes (default 1 MiB).

    Raises:
        OSError: if the file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _row(r: Sequence[Any]) -> Decision:
    return Decision(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4] or ""), r[5], str(r[6] or ""), str(r[7] or ""))


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise DataError(
            f"{path} was written by a newer imgclf (decisions schema {version}, this one reads {SCHEMA_VERSION})",
            "upgrade imgclf",
        )
    cols = [r[1] for r in conn.execute("PRAGMA table_info(decisions)")]
    missing = [c for c in _COLUMNS if c not in cols]
    if missing:
        raise DataError(
            f"{path} is not an imgclf decisions database (table decisions lacks {', '.join(missing)})",
            "move it away; `imgclf review` starts a new one",
        )


# ------------------------------------------------------------------------ writer + reader
class DecisionLog:
    """The writer (and a reader) of one decisions database; safe to share between threads.

    Opens or creates the database: WAL journal, `synchronous=FULL`, the schema above.
    `append` commits each decision in its own transaction before returning.

    Args:
        path: path of the database file (`database_path(root)`); its folder is created.

    Raises:
        DataError: if the file is not a decisions database, was written by a newer schema, or
            cannot be opened / written (the message names the file and the SQLite error).

    Example:
        >>> with DecisionLog(database_path("data/clean")) as log:
        ...     log.append("reject", "cat/0001.png", label="cat", view="class:cat", sha256=digest)
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._conn.execute("PRAGMA synchronous=FULL")
            if str(mode).lower() != "wal":  # e.g. a file system without shared memory: fsync'd rollback journal
                self._conn.execute("PRAGMA journal_mode=DELETE")
            self._conn.executescript(_SCHEMA)
            _check_schema(self._conn, self.path)
            if self._conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise DataError(
                f"cannot open the decisions database {self.path}: {exc}",
                "check the folder is writable and the file is an imgclf decisions database",
            ) from None

    def append(
        self,
        action: str,
        path: str,
        *,
        label: str = "",
        new_label: str | None = None,
        view: str = "",
        sha256: str = "",
    ) -> Decision:
        """Appends one decision and commits it durably before returning.

        Args:
            action: str. One of `ACTIONS`.
            path: str. Image path relative to the reviewed folder, "/"-separated.
            label: str, default "". The image's class.
            new_label: str or None, default None. Required (non-empty) for `relabel`.
            view: str, default "". Page the decision was taken on.
            sha256: str, default "". Hex sha256 of the file's bytes.

        Returns:
            Decision: the row as stored (with its `id` and `time`).

        Raises:
            ValueError: if `action` is not one of `ACTIONS`, or a relabel has no `new_label`.
            DataError: if the database cannot be written.
        """
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}; received {action!r}")
        if action == "relabel" and not new_label:
            raise ValueError("a relabel decision needs new_label")
        with self._lock:
            return self._append_locked(action, path, label, new_label, view, sha256)

    def _append_locked(
        self, action: str, path: str, label: str, new_label: str | None, view: str, sha256: str
    ) -> Decision:
        t = _now()
        try:
            with self._conn:  # BEGIN ... COMMIT: one durable transaction per decision
                self._conn.execute("BEGIN IMMEDIATE")
                cur = self._conn.execute(
                    "INSERT INTO decisions (time, action, path, label, new_label, view, sha256) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (t, action, path, label, new_label, view, sha256),
                )
        except sqlite3.Error as exc:
            raise DataError(
                f"decision not saved to {self.path}: {exc}", "check the disk and the folder's permissions"
            ) from None
        return Decision(int(cur.lastrowid or 0), t, action, path, label, new_label, view, sha256)

    def undo_last(self, *, view: str = "") -> tuple[Decision, Decision] | None:
        """Appends an `undo` of the latest effective decision (what `u` does on the page).

        Args:
            view: str, default "". Page the undo was pressed on.

        Returns:
            tuple `(undone, undo_row)`, or None when there is nothing left to undo.

        Raises:
            DataError: if the database cannot be read or written.
        """
        with self._lock:
            last = DecisionIndex(self._read_locked()).last()
            if last is None:
                return None
            row = self._append_locked("undo", last.path, last.label, last.new_label, view, last.sha256)
            return last, row

    def decisions(self) -> list[Decision]:
        """Every row, in order of `id`.

        Raises:
            DataError: if the database cannot be read.
        """
        with self._lock:
            return self._read_locked()

    def _read_locked(self) -> list[Decision]:
        try:
            rows = self._conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM decisions ORDER BY id").fetchall()
        except sqlite3.Error as exc:
            raise DataError(f"cannot read the decisions database {self.path}: {exc}") from None
        return [_row(r) for r in rows]

    def close(self) -> None:
        """Closes the connection (SQLite checkpoints the WAL into the database file)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_decisions(path: str | os.PathLike) -> list[Decision]:
    """Reads every decision of a database, in order; a missing file means no decisions.

    Opens the existing file without creating one and never writes a row (a rerun of `clean`
    calls this before it rewrites its output).

    Args:
        path: path of the database (`database_path(root)`).

    Returns:
        list of Decision, in order of `id`; empty if the file does not exist.

    Raises:
        DataError: if the file exists but is not a readable decisions database.
    """
    path = Path(path)
    if not path.is_file():
        return []
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=10.0)
        try:
            _check_schema(conn, path)
            rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM decisions ORDER BY id").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise DataError(
            f"cannot read the decisions database {path}: {exc}",
            "move the file away to start without decisions (it is never deleted by imgclf)",
        ) from None
    return [_row(r) for r in rows]


# ---------------------------------------------------------------- what the rows mean
def source_path(path: str) -> str:
    """The path an image had before `clean` set it aside: `_rejected/<reason>/x` -> `x`.

    Args:
        path: str. Path relative to a stage folder, "/"-separated.

    Returns:
        str: `path` without a leading `_rejected/<reason>/`.
    """
    parts = PurePosixPath(path).parts
    if len(parts) > 2 and parts[0] == "_rejected":
        return "/".join(parts[2:])
    return path


def _key(sha256: str, path: str) -> str:
    return f"sha256:{sha256}" if sha256 else f"path:{source_path(path)}"


class DecisionIndex:
    """The effective decision of every image, after undos (the rule in the module docs).

    Args:
        decisions: iterable of Decision, in any order (sorted by `id` here).

    Attributes:
        stacks: dict image key -> list of Decision (oldest first); the last one is effective.
            Images whose decisions were all undone are absent.
        undone: int. Decisions taken back by an `undo`.
        rows: int. Rows read.
    """

    def __init__(self, decisions: Iterable[Decision]):
        rows = sorted(decisions, key=lambda d: d.id)
        self.rows = len(rows)
        self.undone = 0
        stacks: dict[str, list[Decision]] = {}
        for d in rows:
            k = _key(d.sha256, d.path)
            if d.action == "undo":
                stack = stacks.get(k)
                if stack:
                    stack.pop()
                    self.undone += 1
            elif d.action in IMAGE_ACTIONS:
                stacks.setdefault(k, []).append(d)
        self.stacks = {k: s for k, s in stacks.items() if s}
        latest: dict[str, tuple[int, str]] = {}
        for k, s in self.stacks.items():
            p = source_path(s[-1].path)
            if p not in latest or s[-1].id > latest[p][0]:
                latest[p] = (s[-1].id, k)
        self._by_path = {p: k for p, (_, k) in latest.items()}

    def key_by_path(self, path: str) -> str | None:
        """The key of the image whose latest decision was taken at `path` (prefix-free)."""
        return self._by_path.get(source_path(path))

    def effective(self) -> dict[str, Decision]:
        """Image key -> its effective decision (images whose decisions were all undone absent)."""
        return {k: s[-1] for k, s in self.stacks.items()}

    def key_for(self, sha256: str, path: str) -> str | None:
        """The key of the image with these bytes (else at this path) that has a decision.

        Args:
            sha256: str. Hex sha256 of the file ("" if unknown).
            path: str. Its path relative to the folder (a `_rejected/<reason>/` prefix is
                ignored).

        Returns:
            str or None.
        """
        if sha256 and f"sha256:{sha256}" in self.stacks:
            return f"sha256:{sha256}"
        return self.key_by_path(path)

    def lookup(self, sha256: str, path: str, locate: Callable[[str, str], str | None] | None = None) -> Decision | None:
        """The effective decision of an image, matched by sha256 first, then by path.

        Args:
            sha256: str. Hex sha256 of the file ("" if unknown).
            path: str. Its path relative to the folder.
            locate: callable `(decision path, sha256) -> path or None`, or None. Where the file
                the decision was taken on is now (with those bytes); when it is somewhere else
                than `path`, this file is another copy of the same bytes and the decision does
                not apply to it (the rule of `imgclf.clean.replay.plan_replay`).

        Returns:
            Decision or None.
        """
        k = self.key_for(sha256, path)
        if not k:
            return None
        d = self.stacks[k][-1]
        if locate is not None and k.startswith("sha256:") and source_path(d.path) != source_path(path):
            where = locate(d.path, sha256)
            if where is not None and where != path:
                return None
        return d

    def last(self) -> Decision | None:
        """The latest decision not undone, of any image: what the next `undo` takes back."""
        best: Decision | None = None
        for s in self.stacks.values():
            if best is None or s[-1].id > best.id:
                best = s[-1]
        return best
