"""What `imgclf review` shows: the views, read from the folder and the stage reports.

Every view is a list of sections of tiles; a tile is one image of the reviewed folder `DIR`,
named by its path relative to `DIR` (`Tile.path`, the page's `data-path`). Sources:

- the class grids: `imgclf.inputs.list_images(DIR)` (class trees and pre-split trees);
- label issues and outliers: `audit`'s `OUT/label_issues.csv` and `OUT/outliers.csv`
  (`imgclf.records.audit.load_label_issues`, `load_outliers`);
- duplicate groups and label conflicts: `DIR/_reports/clean_report.json` (`groups`,
  `label_conflicts`; read as `imgclf.records.clean.CleanReport`); members set aside by `clean`
  live under `DIR/_rejected/<status>/`;
- the blurriest images: `DIR/_reports/images.csv` (`imgclf.records.clean.ImageTable`: `blur`,
  lowest first);
- a run's confident errors: `RUN/metrics.json` (`imgclf.records.run.MetricsRecord`'s
  `confident_errors`); their files sit in the split folder, so each is found in `DIR` by
  class and file stem (`prepare` and `split` keep both);
- decisions: `imgclf.records.decisions` (the effective decision of each image, and the log).

A clean report or table that is corrupt or written by a newer imgclf is a `DataError` naming
the file (the page shows it; the navigation counts treat it as absent).

`safe_image` is the one check of a requested path: relative, no `..`, inside `DIR` after
resolving symlinks, a regular file whose first bytes are an image signature
(`imgclf.images.sniff_format`); anything else is `NotFoundError` (HTTP 404).
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from imgclf.errors import DataError, ImgclfError
from imgclf.images import IMAGE_EXTENSIONS, sniff_format
from imgclf.inputs import SUBSETS, is_presplit, list_images
from imgclf.records.audit import LABEL_ISSUES, OUTLIERS, count_rows, load_label_issues, load_outliers
from imgclf.records.clean import CleanReport, DuplicateGroup, ImageTable
from imgclf.records.decisions import REASON_MANUAL, Decision, DecisionIndex, file_sha256, source_path
from imgclf.records.run import MetricsRecord, read_metrics_file

#: Tiles per page of a view.
PAGE_SIZE = 200

#: Tiles per class on the overview page (the rest on the class's own page).
CLASS_PREVIEW = 40

#: Duplicate groups / label conflicts per page.
GROUPS_PER_PAGE = 40

#: Rows of the decision log shown (newest first).
LOG_ROWS = 500

#: How long a listing of the folder is reused, in seconds.
LISTING_SECONDS = 1.0

#: MIME type of each format `sniff_format` names.
MEDIA_TYPES: dict[str, str] = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "WEBP": "image/webp",
}


class NotFoundError(ImgclfError):
    """A requested path is not an image file inside the reviewed folder (HTTP 404)."""


# ------------------------------------------------------------------------------ safe paths
def safe_file(root: Path, rel: str) -> Path:
    """Resolves `rel` inside `root`, refusing anything that could leave it.

    Args:
        root: Path. The reviewed folder, already resolved (`Path.resolve()`).
        rel: str. Requested path relative to `root`, "/"-separated.

    Returns:
        Path: the resolved regular file, inside `root`.

    Raises:
        NotFoundError: empty, absolute, with a `..` part, a NUL or a backslash, missing, not a
            regular file, or resolving (through symlinks) outside `root`.
    """
    if not rel or "\0" in rel or "\\" in rel or rel.startswith("/") or len(rel) > 4096:
        raise NotFoundError(f"not found: {rel!r}")
    parts = PurePosixPath(rel).parts
    if any(p in ("..", ".") for p in parts) or PurePosixPath(rel).is_absolute():
        raise NotFoundError(f"not found: {rel!r}")
    try:
        real = (root / rel).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # ValueError: a name the file system cannot encode
        raise NotFoundError(f"not found: {rel}") from None
    try:
        inside = real.is_relative_to(root) and real.is_file()
    except (OSError, ValueError):
        inside = False
    if not inside:
        raise NotFoundError(f"not found: {rel}")
    return real


def safe_image(root: Path, rel: str) -> tuple[Path, str]:
    """Like `safe_file`, and the file must start with an image signature.

    Args:
        root: Path. The reviewed folder, resolved.
        rel: str. Requested path relative to `root`.

    Returns:
        tuple `(path, format)`: the resolved file and its format (a key of `MEDIA_TYPES`).

    Raises:
        NotFoundError: see `safe_file`; or the bytes are not an allowed image format.
    """
    real = safe_file(root, rel)
    try:
        with open(real, "rb") as f:
            head = f.read(16)
    except OSError:
        raise NotFoundError(f"not found: {rel}") from None
    fmt = sniff_format(head)
    if fmt not in MEDIA_TYPES:
        raise NotFoundError(f"not an image file: {rel}")
    return real, fmt


# ----------------------------------------------------------------------------- view model
@dataclass
class Tile:
    """One image on a page.

    Attributes:
        path: str or None. Path relative to the reviewed folder (`data-path`); None when the
            image is not in the folder (then it is listed, not shown or decided).
        label: str. Its class, from its folder ("" if none).
        title: str. Caption: the file name.
        notes: list of str. Extra caption lines ("suggested 7 · quality 0.012", "blur 3.2").
        suggested: str or None. A label the view proposes (label issues, a run's prediction).
        suggest_word: str. How the caption names it ("suggested", "predicted").
        status: str. What `clean` did with it, when the view comes from its reports.
        sha256: str. Hex sha256 of the file, filled before rendering.
        decision: Decision or None. Its effective decision, filled before rendering.
    """

    path: str | None
    label: str
    title: str
    notes: list[str] = field(default_factory=list)
    suggested: str | None = None
    suggest_word: str = "suggested"
    status: str = ""
    sha256: str = ""
    decision: Decision | None = None


@dataclass
class Section:
    """A titled run of tiles (a class, a duplicate group...)."""

    title: str
    tiles: list[Tile]
    note: str = ""
    link: str | None = None
    link_text: str = ""


@dataclass
class View:
    """One page.

    Attributes:
        key: str. Route key and the `view` recorded with each decision (`"classes"`,
            `"class:cat"`, `"issues"`, `"outliers"`, `"duplicates"`, `"conflicts"`, `"errors"`,
            `"blurry"`, `"decisions"`).
        title: str. Heading.
        intro: str. One sentence saying what the page shows.
        sections: list of Section.
        message: str. Shown when the view has nothing (how to get data for it).
        page, pages: int. 1-based page number and page count.
        total: int. Items of the whole view.
        log: list of Decision. The decision log (decisions view only).
    """

    key: str
    title: str
    intro: str
    sections: list[Section] = field(default_factory=list)
    message: str = ""
    page: int = 1
    pages: int = 1
    total: int = 0
    log: list[Decision] = field(default_factory=list)

    @property
    def tiles(self) -> list[Tile]:
        """Every tile of the page, in order."""
        return [t for s in self.sections for t in s.tiles]


def _pages(n: int, per: int) -> int:
    return max(1, math.ceil(n / per))


def _page_slice(items: list, page: int, per: int) -> tuple[list, int, int]:
    pages = _pages(len(items), per)
    page = min(max(1, page), pages)
    return items[(page - 1) * per : page * per], page, pages


def _short(q: float) -> str:
    """A score in [0, 1] in a few characters: `0.012`, `2.1e-06`."""
    return f"{q:.3f}" if not q or q >= 0.001 or q != q else f"{q:.1e}"


# ------------------------------------------------------------------------------- the data
class ReviewData:
    """Reads what the review pages show, fresh on each call (the folder may change under it).

    Args:
        root: path. The reviewed folder: a class tree or a pre-split tree (usually `clean`'s
            output).
        audit: path or None, default None. `imgclf audit`'s output folder (`label_issues.csv`,
            `outliers.csv`).
        run: path or None, default None. An evaluated run folder (`metrics.json`), or a
            `metrics*.json` file.

    Raises:
        DataError: `root` is not a folder; `audit` has no `label_issues.csv`; `run` has no
            `metrics.json`.
    """

    def __init__(
        self, root: str | os.PathLike, *, audit: str | os.PathLike | None = None, run: str | os.PathLike | None = None
    ):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise DataError(f"folder not found: {root}", "pass the folder to review, e.g. `imgclf review data/clean`")
        self.audit = Path(audit) if audit is not None else None
        if self.audit is not None and not (self.audit / LABEL_ISSUES).is_file():
            raise DataError(
                f"{self.audit} has no label_issues.csv", f"run `imgclf audit {root} --out {self.audit}` first"
            )
        self.metrics_file: Path | None = None
        if run is not None:
            run = Path(run)
            self.metrics_file = run if run.is_file() else run / "metrics.json"
            if not self.metrics_file.is_file():
                raise DataError(f"{run} has no metrics.json", f"run `imgclf evaluate {run}` first")
        self._sha: dict[tuple[str, int, int], str] = {}
        self._sha_lock = threading.Lock()
        self._listing: tuple[float, Any] | None = None

    # -------------------------------------------------------------------------- basics
    @property
    def presplit(self) -> bool:
        """True for a pre-split folder (`DIR/{train,val,test}/<class>/...`)."""
        return is_presplit(self.root)

    def listing(self):
        """The folder's images (`imgclf.inputs.list_images`, class layout), re-read when older
        than `LISTING_SECONDS` (one page render lists the folder once, a rerun of `clean` shows
        up on the next page)."""
        now = time.monotonic()
        cached = self._listing
        if cached is not None and now - cached[0] < LISTING_SECONDS:
            return cached[1]
        listing = list_images(self.root, layout="classes")
        self._listing = (now, listing)
        return listing

    def classes(self) -> list[str]:
        """Class names, sorted: the legend of the page (`1`-`9` relabel to the n-th)."""
        return list(self.listing().class_names)

    def label_of(self, rel: str) -> str | None:
        """The class of an image path relative to the folder (also under `_rejected/<reason>/`).

        Returns:
            str or None when the path is not inside a class folder.
        """
        parts = PurePosixPath(source_path(rel)).parts
        if parts and parts[0] in SUBSETS and self.presplit:
            parts = parts[1:]
        if len(parts) < 2 or parts[0].startswith(("_", ".")):
            return None
        return parts[0]

    def sha256(self, rel: str) -> str:
        """Hex sha256 of a file of the folder, cached by size and modification time ("" if
        unreadable)."""
        p = self.root / rel
        try:
            st = p.stat()
            key = (rel, st.st_size, st.st_mtime_ns)
            with self._sha_lock:
                if key in self._sha:
                    return self._sha[key]
            digest = file_sha256(p)
        except OSError:
            return ""
        with self._sha_lock:
            if len(self._sha) > 200_000:
                self._sha.clear()
            self._sha[key] = digest
        return digest

    def _inside(self, rel: str) -> bool:
        try:
            safe_file(self.root, rel)
        except NotFoundError:
            return False
        return True

    def clean_report(self) -> CleanReport | None:
        """`DIR/_reports/clean_report.json`, or None when the folder is not a clean output.

        Raises:
            DataError: the report is corrupt or of a newer schema (naming the file).
        """
        return CleanReport.load_optional(self.root)

    def _moved(self, report: CleanReport | None) -> dict[str, str]:
        """Source path -> output path of images `clean` moved for a review decision."""
        return {f.file: f.to for f in report.decisions.files} if report is not None else {}

    def locate(self, rel: str, status: str = "kept", moved: dict[str, str] | None = None) -> str | None:
        """Where an image named in a report (by its path in `clean`'s input) is in the folder.

        Args:
            rel: str. Path relative to `clean`'s input (= to the folder, for kept images).
            status: str, default "kept". `clean`'s status of it: "kept", or the reason it was
                set aside (it is then under `_rejected/<status>/`).
            moved: dict or None. `_moved(clean_report)`.

        Returns:
            str or None: its path relative to the folder, if it is there.
        """
        cands = []
        if moved and rel in moved:
            cands.append(moved[rel])
        cands.append(rel if status in ("", "kept") else f"_rejected/{status}/{rel}")
        cands += [rel, f"_rejected/{REASON_MANUAL}/{rel}"]
        for c in cands:
            if self._inside(c):
                return c
        return None

    def _tile(
        self,
        path: str | None,
        *,
        label: str | None = None,
        notes: list[str] | None = None,
        suggested: str | None = None,
        status: str = "",
        title: str | None = None,
    ) -> Tile:
        name = PurePosixPath(path).name if path else (title or "?")
        lab = label if label is not None else ((self.label_of(path) or "") if path else "")
        return Tile(path=path, label=lab, title=title or name, notes=notes or [], suggested=suggested, status=status)

    # -------------------------------------------------------------------------- counts
    def nav_counts(self) -> dict[str, int | None]:
        """Items per view for the navigation bar (None: the view has no data source)."""
        out: dict[str, int | None] = {}
        listing = self.listing()
        out["classes"] = len(listing)
        out["issues"] = self._count_rows(LABEL_ISSUES)
        out["outliers"] = self._count_rows(OUTLIERS)
        rep = self._report_or_none()
        out["duplicates"] = len(rep.groups) if rep else None
        out["conflicts"] = len(rep.label_conflicts) if rep else None
        out["blurry"] = None
        if rep:
            try:
                out["blurry"] = ImageTable.count(self.root)
            except DataError:
                out["blurry"] = 0
        out["errors"] = None
        if self.metrics_file is not None:
            try:
                out["errors"] = len(self._metrics().confident_errors)
            except ImgclfError:
                out["errors"] = 0
        return out

    def _count_rows(self, name: str) -> int | None:
        """Rows of one of the audit's tables for the navigation bar (0 if it cannot be read)."""
        if self.audit is None:
            return None
        try:
            return count_rows(self.audit, name)
        except DataError:
            return 0

    def _metrics(self) -> MetricsRecord:
        assert self.metrics_file is not None
        return read_metrics_file(self.metrics_file)

    # --------------------------------------------------------------------------- views
    def view_classes(self) -> View:
        """Every class, its first `CLASS_PREVIEW` images (the start page)."""
        listing = self.listing()
        v = View(
            "classes",
            "Classes",
            "A grid per class, in sorted order; each class's own page shows all of it.",
            total=len(listing),
        )
        by: dict[str, list] = {c: [] for c in listing.class_names}
        for e in listing.entries:
            by.setdefault(e.label, []).append(e)
        for c in listing.class_names:
            entries = by[c]
            shown = [self._tile(e.rel, label=c, notes=[e.subset] if e.subset else []) for e in entries[:CLASS_PREVIEW]]
            more = len(entries) > CLASS_PREVIEW
            v.sections.append(
                Section(
                    f"{c} · {len(entries)}",
                    shown,
                    link=f"/class/{quote(c, safe='')}",
                    link_text=f"all {len(entries)} →" if more else "class page →",
                )
            )
        if not listing.entries:
            v.message = f"no images in class folders under {self.root}"
        return v

    def view_class(self, name: str, page: int = 1) -> View:
        """All images of one class, `PAGE_SIZE` per page.

        Raises:
            NotFoundError: if `name` is not a class of the folder.
        """
        listing = self.listing()
        if name not in listing.class_names:
            raise NotFoundError(f"no class {name!r} in {self.root}")
        entries = [e for e in listing.entries if e.label == name]
        chunk, page, pages = _page_slice(entries, page, PAGE_SIZE)
        v = View(
            f"class:{name}",
            f"Class {name}",
            f"Every image of {name} ({len(entries)}).",
            page=page,
            pages=pages,
            total=len(entries),
        )
        v.sections.append(
            Section(
                f"{len(entries)} images" + (f", page {page} of {pages}" if pages > 1 else ""),
                [self._tile(e.rel, label=name, notes=[e.subset] if e.subset else []) for e in chunk],
            )
        )
        return v

    def view_issues(self, page: int = 1) -> View:
        """`audit`'s label issues, worst (lowest label quality) first, with the suggested label."""
        v = View(
            "issues",
            "Label issues",
            "Images whose given label looks wrong (out-of-fold confident learning), "
            "worst first; the suggested label is marked in the legend's number.",
        )
        if self.audit is None:
            v.message = (
                f"no audit given: run `imgclf audit {self.root} --out OUT`, "
                f"then `imgclf review {self.root} --audit OUT`"
            )
            return v
        rows = load_label_issues(self.audit)
        rows.sort(key=lambda r: (math.inf if math.isnan(r.label_quality) else r.label_quality, r.path))
        chunk, v.page, v.pages = _page_slice(rows, page, PAGE_SIZE)
        v.total = len(rows)
        moved = self._moved(self._report_or_none())
        tiles = []
        for r in chunk:
            path = self.locate(r.path, "kept", moved)
            t = self._tile(
                path,
                title=PurePosixPath(r.path).name,
                notes=[f"label quality {_short(r.label_quality)}"],
                suggested=r.suggested_label or None,
            )
            if path is None or not t.label:
                t.label = r.given_label
            if path is None:
                t.notes.append(f"not in the folder: {r.path}")
            tiles.append(t)
        if rows:
            v.sections.append(Section(f"{len(rows)} label issues", tiles))
        else:
            v.message = "the audit found no label issues"
        return v

    def view_outliers(self, page: int = 1) -> View:
        """`audit`'s outliers, farthest from every class first."""
        v = View(
            "outliers",
            "Outliers",
            "Images far from every class in embedding space (audit's outliers.csv), highest score first.",
        )
        if self.audit is None or not (self.audit / OUTLIERS).is_file():
            v.message = "no outliers.csv: pass --audit OUT of `imgclf audit`"
            return v
        outliers = load_outliers(self.audit)
        outliers.sort(key=lambda r: (math.inf if math.isnan(r.score) else -r.score, r.path))
        chunk, v.page, v.pages = _page_slice(outliers, page, PAGE_SIZE)
        v.total = len(outliers)
        moved = self._moved(self._report_or_none())
        tiles = [
            self._tile(
                self.locate(r.path, "kept", moved), title=PurePosixPath(r.path).name, notes=[f"score {r.score:.2f}"]
            )
            for r in chunk
        ]
        if outliers:
            v.sections.append(Section(f"{len(outliers)} outliers", tiles))
        else:
            v.message = "the audit found no outliers"
        return v

    def _report_or_none(self) -> CleanReport | None:
        try:
            return self.clean_report()
        except DataError:
            return None

    def _group_view(self, key: str, page: int) -> View:
        rep = self.clean_report()
        if key == "duplicates":
            v = View(
                key,
                "Duplicate groups",
                "Exact and near duplicates found by clean: the kept image first, the "
                "others under _rejected/ (a group mixing labels keeps one per label).",
            )
            groups: list[DuplicateGroup] = rep.groups if rep else []
        else:
            v = View(
                key,
                "Label conflicts",
                "Duplicate groups whose members carry different labels: at least one label is likely wrong.",
            )
            groups = rep.label_conflicts if rep else []
        if rep is None:
            v.message = (
                f"{self.root} is not a clean output (no _reports/clean_report.json): "
                f"run `imgclf clean SRC --out {self.root}`"
            )
            return v
        chunk, v.page, v.pages = _page_slice(groups, page, GROUPS_PER_PAGE)
        v.total = len(groups)
        moved = self._moved(rep)
        for g in chunk:
            tiles = []
            for m in sorted(g.members, key=lambda m: (m.status != "kept", m.file)):
                path = self.locate(m.file, m.status, moved)
                notes = [m.status, f"{m.width}×{m.height}"]
                t = self._tile(path, title=PurePosixPath(m.file).name, notes=notes, status=m.status)
                if not t.label:
                    t.label = m.label
                tiles.append(t)
            labels = ", ".join(g.labels)
            v.sections.append(Section(f"group {g.group} · {len(tiles)} images · labels {labels}", tiles))
        if not groups:
            v.message = "clean found no duplicate groups" if key == "duplicates" else "clean found no label conflicts"
        return v

    def view_duplicates(self, page: int = 1) -> View:
        """`clean`'s duplicate groups."""
        return self._group_view("duplicates", page)

    def view_conflicts(self, page: int = 1) -> View:
        """`clean`'s label conflicts (duplicate groups that mix labels)."""
        return self._group_view("conflicts", page)

    def view_blurry(self, page: int = 1) -> View:
        """The blurriest images (lowest variance of the Laplacian in `images.csv`) first."""
        v = View(
            "blurry",
            "Blurriest",
            "Images with the lowest variance of the Laplacian (clean's blur score), blurriest first.",
        )
        rows = ImageTable.load_optional(self.root)
        if rows is None:
            v.message = f"no _reports/images.csv: run `imgclf clean SRC --out {self.root}`"
            return v
        rows.sort(key=lambda r: (r.blur, r.file))
        chunk, v.page, v.pages = _page_slice(rows, page, PAGE_SIZE)
        v.total = len(rows)
        moved = self._moved(self._report_or_none())
        tiles = []
        for r in chunk:
            notes = [f"blur {r.blur:.1f}"] + ([r.status] if r.status != "kept" else [])
            tiles.append(
                self._tile(
                    self.locate(r.file, r.status, moved),
                    title=PurePosixPath(r.file).name,
                    notes=notes,
                    status=r.status,
                )
            )
        v.sections.append(Section(f"{len(rows)} images, blurriest first", tiles))
        return v

    def view_errors(self) -> View:
        """The confident errors of an evaluated run (most confidently wrong first)."""
        v = View(
            "errors",
            "Run errors",
            "The evaluated run's most confidently wrong images: label noise, or real "
            "confusions; the predicted label is marked in the legend's number.",
        )
        if self.metrics_file is None:
            v.message = f"no run given: `imgclf review {self.root} --run models/<run>` after `imgclf evaluate`"
            return v
        index = self._stem_index()
        tiles = []
        for e in self._metrics().confident_errors:
            path = self._find_run_file(e.file, e.true, index)
            t = self._tile(
                path,
                title=PurePosixPath(e.file).name,
                notes=[f"p = {e.probability:.3f}"],
                suggested=e.predicted or None,
            )
            t.suggest_word = "predicted"
            if path is None:
                t.label = e.true
                t.notes.append("not found in the folder")
            tiles.append(t)
        v.total = len(tiles)
        if tiles:
            v.sections.append(Section(f"{len(tiles)} confident errors ({self.metrics_file})", tiles))
        else:
            v.message = "the run has no confident errors"
        return v

    def _stem_index(self) -> dict[tuple[str, str], list[str]]:
        index: dict[tuple[str, str], list[str]] = {}
        for e in self.listing().entries:
            index.setdefault((str(e.label), PurePosixPath(e.rel).stem), []).append(e.rel)
        return index

    def _find_run_file(self, file: str, true: str, index: dict[tuple[str, str], list[str]]) -> str | None:
        p = Path(file)
        try:
            rel = p.resolve().relative_to(self.root).as_posix()
            if self._inside(rel):
                return rel
        except (OSError, ValueError):
            pass
        stem = p.stem
        cands = [stem]
        if "__" in stem:  # split renames a clash `stem__name`
            cands.append(stem.split("__", 1)[1])
        head, _, ext = stem.rpartition("_")
        if head and f".{ext.lower()}" in IMAGE_EXTENSIONS:  # prepare renames `a.jpg` + `a.png` to `a_jpg.png`
            cands.append(head)
        for s in cands:
            if (true, s) in index:
                return index[(true, s)][0]
        return None

    def view_decisions(self, decisions: list[Decision]) -> View:
        """Every image with an effective decision (newest first), and the decision log."""
        v = View(
            "decisions",
            "Decisions",
            "What has been decided (newest first; undone decisions are gone from the "
            "tiles, not from the log). `imgclf clean` applies them on its next run.",
        )
        index = DecisionIndex(decisions)
        moved = self._moved(self._report_or_none())
        eff = sorted(index.effective().values(), key=lambda d: -d.id)
        chunk, v.page, v.pages = _page_slice(eff, 1, PAGE_SIZE)
        tiles = []
        for d in chunk:
            path = self._locate_decided(d, moved)
            t = self._tile(path, title=PurePosixPath(d.path).name, notes=[f"{d.action} · {d.view}", d.time[:19]])
            if path is None:
                t.label = d.label
                t.notes.append("not in the folder now")
            tiles.append(t)
        v.total = len(eff)
        v.sections.append(
            Section(f"images decided: {len(eff)} · decisions undone: {index.undone} · rows: {index.rows}", tiles)
        )
        v.log = list(reversed(decisions[-LOG_ROWS:]))
        if not decisions:
            v.message = "no decisions yet: press x (reject) or 1–9 (relabel) on any page"
        return v

    def decided_file(self, path: str, sha256: str) -> str | None:
        """Where the file a decision was taken on is now, with these bytes: at its path, or where
        a rerun of `clean` put it (`_rejected/manual/`, a new class folder); None if gone.

        Args:
            path: str. The decision's path.
            sha256: str. The decision's sha256.

        Returns:
            str (relative to the folder) or None.
        """
        src = source_path(path)
        moved = self._moved(self._report_or_none())
        for c in (path, f"_rejected/{REASON_MANUAL}/{src}", moved.get(src)):
            if c and self._inside(c) and self.sha256(c) == sha256:
                return c
        return None

    def _locate_decided(self, d: Decision, moved: dict[str, str]) -> str | None:
        src = source_path(d.path)
        cands = [d.path, moved.get(src), f"_rejected/{REASON_MANUAL}/{src}", src]
        first = None
        for c in cands:
            if c and self._inside(c):
                if not d.sha256 or self.sha256(c) == d.sha256:
                    return c
                first = first or c
        return first
