"""`imgclf cluster`: sort a folder of images into candidate classes with KMeans.

The input is a folder (embedded first, `raw` pixels by default; see `imgclf.explore.embed`) or
an `.npz` written by `imgclf embed`. KMeans is scikit-learn's (`n_init` restarts,
`random_state=seed`), so the same input and seed give the same clusters. With `k="auto"`, every
`k` in `[k_min, k_max]` is fitted and the one with the highest silhouette score wins
(Rousseeuw, 1987, "Silhouettes: a graphical aid to the interpretation and validation of cluster
analysis"; `sklearn.metrics.silhouette_score`, on a random sample of `silhouette_sample` images
because the score is quadratic in the number of images).

Clusters are numbered by size (cluster 0 is the largest; ties by KMeans order). The output:

    OUT/cluster_<i>/        the cluster's images (hard links, copies across file systems),
                            named by their relative path with "/" replaced by "__"
    OUT/cluster_<i>.png     contact sheet: up to `sheet_images` images closest to the centre
    OUT/clusters.csv        path, cluster, distance (Euclidean, to the cluster centre), label
    OUT/map_<pca|tsne>.png  2-D projection of the embeddings, coloured by cluster
    OUT/clusters.json       k, silhouette scores, sizes, purity / ARI, inputs and options
    OUT/_reports/embed_rejects.csv   files that could not be read (when any)

Since only sub-folders are classes, renaming `cluster_<i>/` to a class name turns OUT into an
ImageFolder tree the other stages can read.

When the images have labels (ImageFolder input), the clustering is scored against them:
purity (for each cluster, the share of its most common label, summed over clusters and divided
by n; Manning, Raghavan & Schütze, "Introduction to Information Retrieval", 2008, §16.3) and
the adjusted Rand index (Hubert & Arabie, 1985; `sklearn.metrics.adjusted_rand_score`).
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.errors import DataError
from imgclf.explore.embed import Embeddings, embed_folder
from imgclf.explore.loading import reasons, report_rejects
from imgclf.explore.options import ClusterOptions, EmbedOptions
from imgclf.explore.sheets import contact_sheet, scatter_map
from imgclf.fsutil import atomic_write_json, atomic_write_text
from imgclf.ui import progress, summary, warn

_OURS = re.compile(r"^(cluster_\d+|cluster_\d+\.png|clusters\.csv|clusters\.json|map_(pca|tsne)\.png)$")


def purity_score(labels_true: Any, labels_pred: Any) -> float:
    """Cluster purity: the share of items that carry their cluster's most common label.

    Args:
        labels_true: array-like of shape `(n,)`. True classes (any hashable values).
        labels_pred: array-like of shape `(n,)`. Cluster ids.

    Returns:
        float in (0, 1]: `sum over clusters of max_c |cluster ∩ class c| / n`, from
        `sklearn.metrics.cluster.contingency_matrix` (Manning et al., 2008, §16.3). It is 1
        for a perfect clustering and grows with k (one cluster per item scores 1).

    Raises:
        ValueError: if the inputs are empty or differ in length.
    """
    from sklearn.metrics.cluster import contingency_matrix

    if len(labels_true) != len(labels_pred) or len(labels_true) == 0:
        raise ValueError(
            f"need two non-empty label arrays of equal length, got {len(labels_true)} and {len(labels_pred)}"
        )
    cm = contingency_matrix(labels_true, labels_pred)
    return float(cm.max(axis=0).sum() / cm.sum())


@dataclass
class Clustering:
    """KMeans result, clusters numbered by size (0 = largest).

    Attributes:
        k: int. Number of clusters.
        assignments: int64 array `(n,)`. Cluster of each item.
        distances: float32 array `(n,)`. Euclidean distance of each item to its centre.
        centers: float32 array `(k, d)`.
        inertia: float. Sum of squared distances to the centres.
        silhouette: dict int -> float. Silhouette score per `k` tried (only the chosen `k`
            when `k` was given); NaN when it cannot be computed (all items identical).
        purity: float or None. Against `labels`, if given.
        ari: float or None. Adjusted Rand index against `labels`, if given.
    """

    k: int
    assignments: np.ndarray
    distances: np.ndarray
    centers: np.ndarray
    inertia: float
    silhouette: dict[int, float] = field(default_factory=dict)
    purity: float | None = None
    ari: float | None = None

    @property
    def sizes(self) -> list[int]:
        """Number of items in each cluster, index = cluster id."""
        return np.bincount(self.assignments, minlength=self.k).tolist()


def _silhouette(x: np.ndarray, assign: np.ndarray, sample: int, seed: int) -> float:
    from sklearn.metrics import silhouette_score

    if len(np.unique(assign)) < 2 or len(np.unique(assign)) >= len(x):
        return float("nan")
    kwargs: dict[str, Any] = {"random_state": seed}
    if len(x) > sample:
        kwargs["sample_size"] = sample
    return float(silhouette_score(x, assign, **kwargs))


def kmeans(x: np.ndarray, options: ClusterOptions | None = None, labels: list[str] | None = None) -> Clustering:
    """Clusters vectors with scikit-learn KMeans; picks `k` by silhouette when `k="auto"`.

    Args:
        x: float array `(n, d)`. Embeddings, n >= 2.
        options: ClusterOptions or None. `k`, `k_min`, `k_max`, `seed`, `n_init`,
            `silhouette_sample` are used.
        labels: list of str or None. True labels; when given, purity and ARI are computed.

    Returns:
        Clustering (deterministic for a given `x` and `seed`).

    Raises:
        DataError: fewer than 2 items, `k` larger than the number of items, or too few items
            for the `auto` range (silhouette needs 2 <= k <= n - 1).
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    opts = options or ClusterOptions()
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    if n < 2:
        raise DataError(f"need at least 2 images to cluster, found {n}", "add images to the folder")

    def fit(k: int):
        return KMeans(n_clusters=k, n_init=opts.n_init, random_state=opts.seed).fit(x)

    scores: dict[int, float] = {}
    if opts.k == "auto":
        hi = min(opts.k_max, n - 1)
        if hi < opts.k_min:
            raise DataError(
                f"--k auto needs at least {opts.k_min + 1} images (k from {opts.k_min} to n - 1), found {n}",
                "add images, or give --k explicitly",
            )
        best: tuple[int, Any] | None = None
        with progress("cluster: choosing k", total=hi - opts.k_min + 1) as advance:
            for k in range(opts.k_min, hi + 1):
                km = fit(k)
                scores[k] = _silhouette(x, km.labels_, opts.silhouette_sample, opts.seed)
                if best is None or (scores[k] > scores[best[0]]) or np.isnan(scores[best[0]]):
                    best = (k, km)
                advance(status=f"k={k} silhouette {scores[k]:.3f}")
        assert best is not None  # the range k_min..hi is not empty (checked above)
        k, km = best
    else:
        k = int(opts.k)
        if k > n:
            raise DataError(f"--k {k} is more than the {n} images to cluster", "lower --k or use --k auto")
        km = fit(k)
        scores[k] = _silhouette(x, km.labels_, opts.silhouette_sample, opts.seed)

    raw = km.labels_.astype(np.int64)
    order = np.argsort(-np.bincount(raw, minlength=k), kind="stable")  # old id by new id
    new_of_old = np.empty(k, np.int64)
    new_of_old[order] = np.arange(k)
    assign = new_of_old[raw]
    centers = km.cluster_centers_[order].astype(np.float32)
    dist = km.transform(x)[np.arange(n), raw].astype(np.float32)
    result = Clustering(k, assign, dist, centers, float(km.inertia_), scores)
    if labels is not None:
        result.purity = purity_score(labels, assign)
        result.ari = float(adjusted_rand_score(labels, assign))
    return result


def project_2d(x: np.ndarray, method: str = "pca", seed: int = 42) -> np.ndarray:
    """Projects vectors to 2-D for the map.

    Args:
        x: float array `(n, d)`, n >= 2.
        method: `"pca"` (scikit-learn PCA) or `"tsne"` (scikit-learn TSNE, PCA init,
            perplexity min(30, (n - 1) / 3)). t-SNE takes minutes for tens of thousands of images.
        seed: int. `random_state`.

    Returns:
        float array `(n, 2)`.

    Raises:
        ValueError: for another `method`.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.shape[1] < 2:
        x = np.pad(x, ((0, 0), (0, 2 - x.shape[1])))
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = max(1.0, min(30.0, (len(x) - 1) / 3))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    raise ValueError(f"method must be 'pca' or 'tsne', received method={method!r}")


@dataclass
class ClusterReport:
    """What `cluster_images` wrote."""

    out: Path
    clustering: Clustering
    embeddings: Embeddings
    linked: int = 0
    copied: int = 0
    sheets: list[Path] = field(default_factory=list)
    map_png: Path | None = None


def _link_or_copy(src: Path, dest: Path) -> bool:
    """Hard-links `src` to `dest`; copies when linking is impossible. True if linked."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
        return True
    except OSError:
        tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
        shutil.copy2(src, tmp)
        os.replace(tmp, dest)
        return False


def _prepare_out(out: Path, overwrite: bool, root: Path | None) -> None:
    if root is not None and (out.resolve() == root.resolve() or root.resolve() in out.resolve().parents):
        raise DataError(
            f"output folder {out} must not be the input folder {root} or inside it",
            "the clusters would be read back as images; choose another --out",
        )
    if not out.exists():
        return
    if not out.is_dir():
        raise DataError(f"--out {out} exists and is not a folder")
    ours = [p for p in out.iterdir() if _OURS.match(p.name)]
    if ours and not overwrite:
        raise DataError(f"{out} already holds clusters ({ours[0].name})", "choose another --out or pass --overwrite")
    for p in ours:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()


def _load_source(source: Path, embed_options: EmbedOptions | None, models_dir: str | os.PathLike) -> Embeddings:
    if source.is_file() and source.suffix == ".npz":
        if embed_options is not None and embed_options.model != "raw":
            warn(f"--model is ignored: {source} already holds embeddings ({Embeddings.load(source).model})")
        return Embeddings.load(source)
    if source.is_dir():
        return embed_folder(source, embed_options, models_dir=models_dir)
    if source.exists():
        raise DataError(f"{source} is neither a folder of images nor an .npz file from `imgclf embed`")
    raise DataError(f"not found: {source}", "give a folder of images or an .npz file from `imgclf embed`")


def cluster_images(
    source: str | os.PathLike,
    out: str | os.PathLike,
    options: ClusterOptions | None = None,
    embed_options: EmbedOptions | None = None,
    *,
    models_dir: str | os.PathLike = "models",
) -> ClusterReport:
    """Embeds (or reads embeddings), clusters with KMeans and writes the outputs listed in the
    module docstring.

    Args:
        source: path. A folder of images, or an `.npz` from `imgclf embed` (its images are found
            through the stored `root`; if that folder is gone, only the CSV, JSON and map are
            written).
        out: path. Output folder, created if missing; must not be inside the image folder.
        options: ClusterOptions or None. k, seed, map method, sheet size, overwrite...
        embed_options: EmbedOptions or None. How to embed a folder (default `raw` pixels).
        models_dir: path, default "models". Where `--model autoencoder` looks.

    Returns:
        ClusterReport.

    Raises:
        DataError: missing / empty input, fewer than 2 images, `k` too large, `out` inside the
            input folder, or `out` holding earlier clusters without `overwrite`.
        ModelError, ConfigError: from embedding (see `imgclf.explore.embed.resolve_encoder`).
    """
    opts = options or ClusterOptions()
    source, out = Path(source), Path(out)
    emb = _load_source(source, embed_options, models_dir)
    root = Path(emb.root) if emb.root else None
    have_images = root is not None and root.is_dir()
    if len(emb.paths) < 2:
        where = f" in {root}" if root else ""
        raise DataError(f"need at least 2 images to cluster, found {len(emb.paths)}{where}", "add images to the folder")
    _prepare_out(out, opts.overwrite, root if have_images else None)
    res = kmeans(emb.embeddings, opts, emb.labels)
    out.mkdir(parents=True, exist_ok=True)
    report = ClusterReport(out, res, emb)
    order = np.lexsort((res.distances, res.assignments))  # by cluster, then distance to its center
    _write_assignments(out, emb, res, order)
    if root is not None and have_images:
        _write_cluster_folders(report, root)
        _write_contact_sheets(report, root, order, opts)
    else:
        warn(f"image folder {emb.root or '(not recorded)'} not found: cluster folders and contact sheets not written")
    scores = f", purity {res.purity:.3f}, ARI {res.ari:.3f}" if res.purity is not None else ""
    report.map_png = _write_map(out, emb, res, opts, scores)
    _write_summary_json(report, source, opts)
    how = f"k={res.k}" + (" (best silhouette)" if opts.k == "auto" else "")
    files = f", {report.linked} linked / {report.copied} copied" if have_images else ""
    summary(
        f"cluster: {len(emb.paths)} images into {how}, sizes {res.sizes}{scores}{files}, "
        f"{len(emb.rejects)} skipped ({reasons(emb.rejects)}) -> {out}"
    )
    return report


def _write_assignments(out: Path, emb: Embeddings, res: Clustering, order: np.ndarray) -> None:
    """`clusters.csv` in `order` (by cluster then distance), and the embedding rejects."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "cluster", "distance"] + (["label"] if emb.labels is not None else []))
    for i in order:
        row = [emb.paths[i], int(res.assignments[i]), f"{float(res.distances[i]):.6g}"]
        w.writerow(row + ([emb.labels[i]] if emb.labels is not None else []))
    atomic_write_text(out / "clusters.csv", buf.getvalue())
    if emb.rejects:
        report_rejects(emb.rejects, out / "_reports" / "embed_rejects.csv")


def _write_cluster_folders(report: ClusterReport, root: Path) -> None:
    """`cluster_<c>/` folders of hard links (copies where linking fails) to the images."""
    emb, res, out = report.embeddings, report.clustering, report.out
    with progress("cluster: writing folders", total=len(emb.paths)) as advance:
        for i, rel in enumerate(emb.paths):
            dest = out / f"cluster_{int(res.assignments[i])}" / rel.replace("/", "__")
            if dest.exists():  # "a/b__c" and "a__b/c" flatten to the same name: keep both
                dest = dest.with_name(f"{dest.stem}-{i}{dest.suffix}")
            if _link_or_copy(root / rel, dest):
                report.linked += 1
            else:
                report.copied += 1
            advance()


def _write_contact_sheets(report: ClusterReport, root: Path, order: np.ndarray, opts: ClusterOptions) -> None:
    """`cluster_<c>.png`: the images nearest each center, titled with the size and top label."""
    emb, res, out = report.embeddings, report.clustering, report.out
    with progress("cluster: contact sheets", total=res.k) as advance:
        for c in range(res.k):
            members = order[res.assignments[order] == c][: opts.sheet_images]
            title = f"cluster {c}: {res.sizes[c]} images"
            if emb.labels is not None:
                labs = [emb.labels[i] for i in np.flatnonzero(res.assignments == c)]
                top = max(sorted(set(labs)), key=labs.count)
                title += f", {labs.count(top) / len(labs):.0%} labelled {top}"
            report.sheets.append(
                contact_sheet(
                    [root / emb.paths[i] for i in members], out / f"cluster_{c}.png", thumb=opts.thumb, title=title
                )
            )
            advance()


def _write_map(out: Path, emb: Embeddings, res: Clustering, opts: ClusterOptions, scores: str) -> Path:
    """`map_<method>.png`: the 2-D projection coloured by cluster."""
    pts = project_2d(emb.embeddings, opts.map, opts.seed)
    centers2d = np.stack([pts[res.assignments == c].mean(axis=0) for c in range(res.k)])
    title = f"{len(emb.paths)} images, k={res.k} ({emb.model}){scores}"
    return scatter_map(
        pts, res.assignments, out / f"map_{opts.map}.png", title=title, method=opts.map, centers=centers2d
    )


def _write_summary_json(report: ClusterReport, source: Path, opts: ClusterOptions) -> None:
    """`clusters.json`: what was clustered, how, and the scores."""
    emb, res = report.embeddings, report.clustering
    atomic_write_json(
        report.out / "clusters.json",
        {
            "source": str(source),
            "model": emb.model,
            "root": emb.root,
            "images": len(emb.paths),
            "dimensions": int(emb.embeddings.shape[1]),
            "k": res.k,
            "k_chosen_by": "silhouette" if opts.k == "auto" else "given",
            "silhouette": {str(k): v for k, v in res.silhouette.items()},
            "sizes": res.sizes,
            "inertia": res.inertia,
            "purity": res.purity,
            "adjusted_rand_index": res.ari,
            "labels": sorted(set(emb.labels)) if emb.labels is not None else None,
            "skipped": [r.__dict__ for r in emb.rejects],
            "linked": report.linked,
            "copied": report.copied,
            "options": opts.model_dump(),
        },
    )
