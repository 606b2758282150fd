"""Where the audited images came from: scrape sources (for noise per source) and groups (for folds).

Sources come from a scrape manifest, read only through `imgclf.records.manifest.file_provenance`
(schema and migrations belong to the scraper). The manifest is looked for in the audited
folder, then up the stage chain each stage records: `clean` writes `_reports/clean_report.json`
and `split` writes `_reports/split_report.json`, both with the folder they read (`"src"`).
Scraped files are named after their content (`<label>/<sha256[:16]><ext>`) and `clean` copies
them byte for byte, so an audited file is matched to its manifest entry by file stem (name
without extension), which also survives `prepare` re-encoding and a relabel that moved it to
another class folder.

Groups (images that must share a fold) are the connected components of:

- duplicate groups recorded by `clean` (`_reports/images.csv`: column `group` of kept files,
  which after `clean` are label conflicts: the same picture under two labels) or by `split`
  (`_reports/split.csv`: `group`, with `dest` the path in the split folder);
- provenance from the manifest: files linked by one post (a gallery, a crosspost and its
  parent), or by one URL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.errors import DataError
from imgclf.records.clean import CleanReport, ImageTable
from imgclf.records.manifest import MANIFEST_NAME, file_provenance
from imgclf.records.split import SPLIT_TABLE, SplitReport, load_split_table

#: How far up the recorded stage chain (`_reports/*_report.json` "src") a manifest is searched.
MAX_HOPS = 4

#: The stage reports whose `src` leads back toward the scrape folder, nearest first.
_STAGE_REPORTS: tuple[type[SplitReport] | type[CleanReport], ...] = (SplitReport, CleanReport)


@dataclass
class Provenance:
    """Sources and groups of the audited images.

    Attributes:
        manifest_dir: Path or None. The scrape folder whose manifest was read.
        sources: list (length n) of list of str: the sources of each image (`r/<subreddit>`,
            or the page it was found on); empty when unknown.
        groups: int64 array `(n,)` or None: group id of each image (singletons get their own
            id), None when no group information was found.
        group_origins: list of str. What the groups were built from.
        matched: int. Images matched to a manifest entry.
        notes: list of str. Warnings for the report (unreadable manifest, ...).
    """

    manifest_dir: Path | None = None
    sources: list[list[str]] = field(default_factory=list)
    groups: np.ndarray | None = None
    group_origins: list[str] = field(default_factory=list)
    matched: int = 0
    notes: list[str] = field(default_factory=list)


def find_scrape_folder(data_dir: str | os.PathLike, explicit: str | os.PathLike | None = None) -> Path | None:
    """Finds the scrape folder (holding the manifest) the images of `data_dir` came from.

    Args:
        data_dir: path. The audited folder.
        explicit: path or None. A scrape folder, or the manifest file itself, given by the user.

    Returns:
        Path of the folder holding the manifest, or None when there is none.

    Raises:
        DataError: if `explicit` is given and holds no manifest.
    """
    name = MANIFEST_NAME
    if explicit is not None:
        p = Path(explicit)
        folder = p.parent if p.name == name else p
        if not (folder / name).is_file():
            raise DataError(f"no scrape manifest at {folder / name}", "give the --out folder of `imgclf scrape`")
        return folder
    here = Path(data_dir)
    seen: set[Path] = set()
    for _ in range(MAX_HOPS + 1):
        if (here / name).is_file():
            return here
        seen.add(here.resolve())
        nxt = None
        for record in _STAGE_REPORTS:
            try:
                rep = record.load_optional(here)
            except DataError:  # an unreadable report leads nowhere; provenance is optional
                continue
            src = rep.src if rep is not None else ""
            if src and Path(src).resolve() not in seen:
                nxt = Path(src)
                break
        if nxt is None:
            return None
        here = nxt
    return None


def _recorded_tables(data_dir: Path) -> list[tuple[str, list[tuple[int | None, str]]]]:
    """(origin, [(group, file)]) of split's and clean's tables in `data_dir`, those that load."""
    tables: list[tuple[str, list[tuple[int | None, str]]]] = []
    try:
        if (data_dir / SPLIT_TABLE).is_file():
            tables.append((str(data_dir / SPLIT_TABLE), [(r.group, r.dest) for r in load_split_table(data_dir)]))
    except DataError:  # an unreadable table adds no groups; provenance is optional
        pass
    try:
        rows = ImageTable.load_optional(data_dir)
        if rows is not None:
            tables.append((str(ImageTable.path(data_dir)), [(r.group, r.file) for r in rows]))
    except DataError:
        pass
    return tables


def _recorded_groups(data_dir: Path, rels: list[str]) -> tuple[list[tuple[int, int]], list[str]]:
    """Pairs of positions in `rels` that a stage report puts in one duplicate group."""
    index = {r: i for i, r in enumerate(rels)}
    members: dict[str, list[int]] = {}
    origins = []
    for origin, rows in _recorded_tables(data_dir):
        found = 0
        for group, file in rows:
            if group is not None and file in index:
                members.setdefault(f"{Path(origin).name}:{group}", []).append(index[file])
                found += 1
        if found:
            origins.append(origin)
    pairs = [(m[0], j) for m in members.values() for j in m[1:]]
    return pairs, origins


def _link_record(rec: Any, i: int, link: dict[str, list[int]]) -> list[str]:
    """The sources of one manifest record; adds image `i` to the groups of its posts and URLs."""
    srcs = list(getattr(rec, "sources", []) or [])
    for post in getattr(rec, "posts", []) or []:
        if not isinstance(post, dict):
            continue
        sub = post.get("subreddit")
        if sub and f"r/{sub}" not in srcs:
            srcs.append(f"r/{sub}")
        for key in ("post_id", "crosspost_parent"):
            if post.get(key):
                link.setdefault(f"post:{post[key]}", []).append(i)
    for url in getattr(rec, "urls", []) or []:
        link.setdefault(f"url:{url}", []).append(i)
    return srcs


def _manifest_links(prov: Provenance, folder: Path, rels: list[str], use_groups: bool) -> list[tuple[int, int]]:
    """Fills `prov.sources` from the scrape manifest in `folder`; returns the pairs of images it links."""
    prov.manifest_dir = folder
    try:
        records: dict[str, Any] = file_provenance(folder)
    except Exception as exc:  # noqa: BLE001 - a manifest we cannot read must not stop the audit
        prov.notes.append(f"scrape manifest in {folder} could not be read ({exc}); no noise per source")
        records = {}
    by_stem: dict[str, Any] = {}
    for rel, rec in records.items():
        by_stem.setdefault(Path(rel).stem, rec)
    link: dict[str, list[int]] = {}
    for i, rel in enumerate(rels):
        rec = by_stem.get(Path(rel).stem)
        if rec is not None:
            prov.matched += 1
            prov.sources[i] = _link_record(rec, i, link)
    if prov.matched == 0 and records:
        prov.notes.append(f"none of the {len(rels)} images matched an entry of the scrape manifest in {folder}")
    if not use_groups:
        return []
    linked = [(m[0], j) for m in link.values() for j in m[1:] if j != m[0]]
    if linked:
        prov.group_origins.append(f"scrape manifest {folder} (posts, crossposts, URLs)")
    return linked


def _components(pairs: list[tuple[int, int]], n: int) -> np.ndarray:
    """Connected component of each of `n` images, given linked pairs (scipy)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    return comp.astype(np.int64)


def read_provenance(
    data_dir: str | os.PathLike,
    rels: list[str],
    *,
    manifest: str | os.PathLike | None = None,
    use_groups: bool = True,
) -> Provenance:
    """Sources and fold groups of the images `rels` of `data_dir` (see the module docstring).

    Args:
        data_dir: path. The audited folder.
        rels: list of str. The images, relative to `data_dir`, "/"-separated.
        manifest: path or None. A scrape folder (or its manifest file) to use instead of the
            one found by `find_scrape_folder`.
        use_groups: bool, default True. Build groups; False leaves `groups` None.

    Returns:
        Provenance. Never raises for an unreadable manifest or report: it is recorded in
        `notes` and the audit goes on without sources.

    Raises:
        DataError: if `manifest` is given and holds no manifest.
    """
    data_dir = Path(data_dir)
    prov = Provenance(sources=[[] for _ in rels])
    pairs: list[tuple[int, int]] = []
    if use_groups:
        pairs, prov.group_origins = _recorded_groups(data_dir, rels)
    folder = find_scrape_folder(data_dir, manifest)
    if folder is not None:
        pairs += _manifest_links(prov, folder, rels, use_groups)
    if use_groups and pairs:
        prov.groups = _components(pairs, len(rels))
    return prov
