"""Provenance groups: images that came from one post, gallery, crosspost family or URL.

Scraped pictures carry a signal no pixel comparison sees: two files linked from the same Reddit
post (a gallery), from a crosspost and its parent, or fetched from the same URL (or redirected
to the same final URL) are the same or nearly the same picture, or at least the same scene, so
they must never sit on both sides of a train / test split, even when their pixels differ.

The scrape manifest (`imgclf.records.manifest`, read only through its own API:
`file_provenance` and `Manifest.get`) records these links for every stored file. This module
derives the groups from it (`provenance_from_manifest`, `group_entries`); the record a stage
folder keeps of them, `_reports/provenance.csv`, is `imgclf.records.provenance` (its writer and
reader). `clean` builds the groups from its input's manifest and writes the record for the
images it keeps, under their output paths; `prepare` copies it with its new file names; `split`
reads its input's record (`stage_provenance`: the record, else a manifest in the folder itself).

Groups are the connected components of the graph joining files that share a link; a group's
key is the smallest of its links (so it is the same in every stage).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from imgclf.clean.similarity.pairs import connected_components
from imgclf.records.clean import ProvenanceFile, ProvenanceGroup
from imgclf.records.manifest import MANIFEST_NAME, Manifest, file_provenance, manifest_path
from imgclf.records.provenance import (
    PROVENANCE_RECORD,
    ProvenanceEntry,
    read_provenance,
)


def _links_of(fp, final_url) -> list[str]:
    links = set()
    for post in fp.posts:
        if post.get("post_id"):
            links.add(f"post:{post['post_id']}")
        if post.get("crosspost_parent"):
            links.add(f"post:{post['crosspost_parent']}")
    for url in fp.urls:
        links.add(f"url:{url}")
        final = final_url(url, fp.label)
        if final:
            links.add(f"url:{final}")
    return sorted(links)


def group_entries(links: Mapping[str, Sequence[str]]) -> dict[str, ProvenanceEntry]:
    """Joins files that share a link into groups (connected components).

    Args:
        links: mapping file -> its links (e.g. `post:abc`, `url:https://...`).

    Returns:
        dict file -> ProvenanceEntry, the group key being the smallest link of the component
        (a file without links gets `file:<path>`, a group of its own).
    """
    files = sorted(links)
    index = {f: k for k, f in enumerate(files)}
    first: dict[str, int] = {}
    ei: list[int] = []
    ej: list[int] = []
    for f in files:
        for link in links[f]:
            k = first.setdefault(link, index[f])
            if k != index[f]:
                ei.append(k)
                ej.append(index[f])
    comp = connected_components(len(files), np.asarray(ei, np.int64), np.asarray(ej, np.int64))
    keys: dict[int, str] = {}
    for f, c in zip(files, comp.tolist()):
        own = min(links[f]) if links[f] else f"file:{f}"
        keys[c] = min(keys.get(c, own), own)
    return {f: ProvenanceEntry(f, keys[c], tuple(links[f])) for f, c in zip(files, comp.tolist())}


def provenance_from_manifest(folder: str | os.PathLike) -> dict[str, ProvenanceEntry] | None:
    """The provenance groups of the files a scrape stored in `folder`, from its manifest.

    Args:
        folder: path. A folder written by `imgclf scrape reddit|web` (holding `_manifest.sqlite`).

    Returns:
        dict file (relative to `folder`) -> ProvenanceEntry, or None when `folder` has no
        manifest.

    Raises:
        DataError: the manifest cannot be read (from `imgclf.records.manifest`).
    """
    if not manifest_path(folder).is_file():
        return None
    stored = file_provenance(folder)
    m = Manifest(folder, lock=False)
    try:

        def final_url(url: str, label: str) -> str | None:
            row = m.get(url, label)
            return row["final_url"] if row is not None and row["final_url"] and row["final_url"] != url else None

        links = {path: _links_of(fp, final_url) for path, fp in stored.items()}
    finally:
        m.close()
    return group_entries(links)


def stage_provenance(folder: str | os.PathLike) -> tuple[dict[str, ProvenanceEntry], str] | None:
    """The provenance of the images of a stage folder: its record, else its own scrape manifest.

    Args:
        folder: path. A stage folder, or a scrape output folder.

    Returns:
        tuple `(entries, origin)` with `origin` the file it came from, or None when the folder
        has neither.
    """
    rec = read_provenance(folder)
    if rec is not None:
        return rec, PROVENANCE_RECORD
    man = provenance_from_manifest(folder)
    return (man, MANIFEST_NAME) if man is not None else None


def group_ids(files: Sequence[str], entries: Mapping[str, ProvenanceEntry]) -> np.ndarray:
    """Integer provenance group of each file, for `imgclf.clean.groups` / `imgclf.split`.

    Args:
        files: sequence of n file paths (relative, as in `entries`).
        entries: mapping file -> ProvenanceEntry.

    Returns:
        np.ndarray of int64, shape `(n,)`: files of one group share an id; a file without an
        entry gets an id of its own.
    """
    ids: dict[str, int] = {}
    out = np.empty(len(files), np.int64)
    for k, f in enumerate(files):
        e = entries.get(f)
        key = e.group if e is not None else f"\0{f}"
        out[k] = ids.setdefault(key, len(ids))
    return out


def groups_report(
    files: Sequence[str], entries: Mapping[str, ProvenanceEntry], status: Mapping[str, str]
) -> list[ProvenanceGroup]:
    """The provenance groups of two or more files, for `clean_report.json` (pure).

    Args:
        files: sequence of file paths.
        entries: mapping file -> ProvenanceEntry.
        status: mapping file -> what `clean` did with it (`"kept"` or the reason it was set
            aside; "" when absent).

    Returns:
        list of `imgclf.records.clean.ProvenanceGroup`, sorted by group key, files sorted;
        `links` are the links the members share with another member.
    """
    by: dict[str, list[str]] = {}
    for f in files:
        e = entries.get(f)
        if e is not None:
            by.setdefault(e.group, []).append(f)
    out = []
    for key in sorted(by):
        members = sorted(by[key])
        if len(members) < 2:
            continue
        counts: dict[str, int] = {}
        for f in members:
            for link in entries[f].links:
                counts[link] = counts.get(link, 0) + 1
        shared = sorted(link for link, c in counts.items() if c > 1)
        files_of = [ProvenanceFile(file=f, status=status.get(f, "")) for f in members]
        out.append(ProvenanceGroup(group=key, links=shared, files=files_of))
    return out
