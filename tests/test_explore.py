"""`imgclf embed` / `cluster` / `autoencoder`: on real handwritten digits exported as 8x8 PNGs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from imgclf.cli.main import app
from imgclf.errors import ConfigError, DataError, ModelError
from imgclf.explore.cluster import cluster_images, kmeans, purity_score
from imgclf.explore.embed import Embeddings, embed_folder
from imgclf.explore.options import AutoencoderOptions, ClusterOptions, EmbedOptions

runner = CliRunner()
CLASSES = (0, 1, 6)  # three digits that raw-pixel KMeans separates well
PER_CLASS = 12


def _export_digits(root: Path, classes=CLASSES, per_class=PER_CLASS) -> Path:
    """Writes real sklearn digits as `root/<digit>/<i>.png` (8x8 grayscale, values scaled to [0, 255])."""
    from sklearn.datasets import load_digits

    d = load_digits()
    for c in classes:
        (root / str(c)).mkdir(parents=True, exist_ok=True)
        idx = np.flatnonzero(d.target == c)[:per_class]
        for i in idx:
            Image.fromarray(np.round(d.images[i] * 255 / 16).astype(np.uint8)).save(root / str(c) / f"{i:04d}.png")
    return root


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return _export_digits(tmp_path_factory.mktemp("digits") / "digits")


def _one_line_error(res, *needles):
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert sum(line.startswith("error:") for line in res.output.splitlines()) == 1, res.output
    for n in needles:
        assert n in res.output, res.output


# ------------------------------------------------------------------------------- metrics
def test_purity_counts_the_majority_label_of_each_cluster():
    assert purity_score(["a", "a", "b", "b"], [0, 0, 0, 1]) == pytest.approx(3 / 4)
    assert purity_score(["a", "b", "c"], [0, 0, 0]) == pytest.approx(1 / 3)
    assert purity_score(["a", "a", "b"], [1, 1, 0]) == 1.0
    with pytest.raises(ValueError):
        purity_score([], [])


def test_kmeans_orders_clusters_by_size_and_scores_against_labels():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (5, 2)), rng.normal(5, 0.1, (12, 2))]).astype(np.float32)
    labels = ["small"] * 5 + ["big"] * 12
    res = kmeans(x, ClusterOptions(k=2, seed=1), labels)
    assert res.sizes == [12, 5]  # cluster 0 is the largest
    assert (res.assignments[5:] == 0).all() and (res.assignments[:5] == 1).all()
    assert res.purity == 1.0 and res.ari == pytest.approx(1.0)
    assert res.distances.shape == (17,) and (res.distances < 1).all()


def test_kmeans_auto_picks_k_by_silhouette():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 0.05, (8, 2)) for c in (0, 3, 6)]).astype(np.float32)
    res = kmeans(x, ClusterOptions(k="auto", k_min=2, k_max=6))
    assert res.k == 3
    assert set(res.silhouette) == {2, 3, 4, 5, 6}
    assert max(res.silhouette, key=res.silhouette.get) == 3


def test_kmeans_refuses_too_few_items():
    with pytest.raises(DataError, match="at least 2"):
        kmeans(np.zeros((1, 4)), ClusterOptions(k=2))
    with pytest.raises(DataError, match="more than the 3 images"):
        kmeans(np.eye(3), ClusterOptions(k=5))
    with pytest.raises(DataError, match="--k auto needs"):
        kmeans(np.eye(2), ClusterOptions(k="auto"))


# ---------------------------------------------------------------------------------- embed
def test_embed_raw_keeps_paths_labels_and_lists_unreadable_files(tmp_path):
    root = _export_digits(tmp_path / "d", classes=(3, 4), per_class=4)
    (root / "3" / "broken.png").write_bytes(b"<html>not an image</html>")
    emb = embed_folder(root, EmbedOptions(model="raw"))
    assert emb.embeddings.shape == (8, 8 * 8 * 3) and emb.embeddings.dtype == np.float32
    assert emb.embeddings.min() >= 0.0 and emb.embeddings.max() <= 1.0
    assert emb.paths[0].startswith("3/") and all("/" in p for p in emb.paths)
    assert emb.labels == ["3"] * 4 + ["4"] * 4
    assert [(r.path, r.reason) for r in emb.rejects] == [("3/broken.png", "not_an_image")]

    out = tmp_path / "e.npz"
    res = runner.invoke(app, ["embed", str(root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "skipped 3/broken.png: not_an_image" in res.output
    back = Embeddings.load(out)
    np.testing.assert_array_equal(back.embeddings, emb.embeddings)
    assert back.paths == emb.paths and back.labels == emb.labels and back.model == "raw"
    assert back.rejects == emb.rejects and Path(back.root) == root.resolve()
    assert (tmp_path / "e.rejects.csv").read_text().splitlines()[1].startswith("3/broken.png,not_an_image")
    with np.load(out, allow_pickle=False) as d:  # no pickled objects in the file
        assert d["embeddings"].shape == (8, 192)


def test_embed_flat_folder_has_no_labels_and_size_option_applies(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8)).save(root / f"{i}.png")
    emb = embed_folder(root, EmbedOptions(size=10))
    assert emb.labels is None and emb.size == 10 and emb.embeddings.shape == (3, 300)


@pytest.mark.slow  # imports TensorFlow through the model registry
def test_embed_unknown_model_names_the_choices(tmp_path):
    with pytest.raises(ModelError, match=r"unknown model 'no-such-model'.*raw, autoencoder"):
        embed_folder(_export_digits(tmp_path / "d", classes=(1,), per_class=2), EmbedOptions(model="no-such-model"))


def test_embed_errors_are_clear(tmp_path):
    _export_digits(tmp_path / "d", classes=(1,), per_class=2)
    with pytest.raises(ConfigError, match="--weights applies to registry"):
        embed_folder(tmp_path / "d", EmbedOptions(model="raw", weights="imagenet"))
    np.savez(tmp_path / "bad.npz", x=np.zeros(3))
    with pytest.raises(DataError, match="lacks embeddings, paths"):
        Embeddings.load(tmp_path / "bad.npz")
    (tmp_path / "text.npz").write_text("not numpy")
    with pytest.raises(DataError, match=r"not a readable embeddings \.npz"):
        Embeddings.load(tmp_path / "text.npz")


# -------------------------------------------------------------------------------- cluster
def test_cluster_is_deterministic_for_a_seed_and_writes_everything(digits, tmp_path):
    a = cluster_images(digits, tmp_path / "a", ClusterOptions(k=3, seed=7, sheet_images=9))
    b = cluster_images(digits, tmp_path / "b", ClusterOptions(k=3, seed=7, sheet_images=9))
    csv_a = (tmp_path / "a" / "clusters.csv").read_text()
    assert csv_a == (tmp_path / "b" / "clusters.csv").read_text()
    np.testing.assert_array_equal(a.clustering.assignments, b.clustering.assignments)

    n = len(CLASSES) * PER_CLASS
    rows = csv_a.splitlines()
    assert rows[0] == "path,cluster,distance,label" and len(rows) == n + 1
    out = tmp_path / "a"
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == ["cluster_0", "cluster_1", "cluster_2"]
    linked = [f for d in folders for f in (out / d).iterdir()]
    assert len(linked) == n and a.linked == n and a.copied == 0
    first = linked[0]
    src = digits / first.name.replace("__", "/")
    assert os.path.samefile(first, src)  # a hard link, not a copy

    # raw pixels separate 0 / 1 / 6 well: the scores are real, not placeholders
    info = json.loads((out / "clusters.json").read_text())
    assert info["k"] == 3 and sum(info["sizes"]) == n
    assert info["purity"] > 0.8 and info["adjusted_rand_index"] > 0.5
    assert info["purity"] == pytest.approx(a.clustering.purity)

    for c in range(3):
        sheet = Image.open(out / f"cluster_{c}.png")
        assert sheet.size[0] >= 64 and sheet.size[1] >= 64
        assert len(np.unique(np.asarray(sheet))) > 2  # thumbnails were drawn
    mp = Image.open(out / "map_pca.png")
    assert mp.size == (700, 600)


def test_cluster_from_npz_with_tsne_and_overwrite(digits, tmp_path):
    npz = tmp_path / "e.npz"
    assert runner.invoke(app, ["embed", str(digits), "--out", str(npz)]).exit_code == 0
    out = tmp_path / "c"
    res = runner.invoke(app, ["cluster", str(npz), "--k", "3", "--map", "tsne", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "purity" in res.output and "ARI" in res.output
    assert (out / "map_tsne.png").is_file() and (out / "cluster_2.png").is_file()
    again = runner.invoke(app, ["cluster", str(npz), "--k", "2", "--out", str(out)])
    _one_line_error(again, "already holds clusters")
    res = runner.invoke(app, ["cluster", str(npz), "--k", "2", "--out", str(out), "--overwrite"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["cluster_0", "cluster_1"]
    assert not (out / "map_tsne.png").exists() and (out / "map_pca.png").is_file()


def test_cluster_auto_through_the_cli(digits, tmp_path):
    out = tmp_path / "auto"
    res = runner.invoke(app, ["cluster", str(digits), "--k", "auto", "--k-max", "5", "--out", str(out)])
    assert res.exit_code == 0, res.output
    info = json.loads((out / "clusters.json").read_text())
    assert info["k_chosen_by"] == "silhouette" and sorted(info["silhouette"]) == ["2", "3", "4", "5"]
    assert 2 <= info["k"] <= 5


def test_cluster_empty_or_single_image_folder_is_one_clear_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(runner.invoke(app, ["cluster", str(empty), "--out", str(tmp_path / "o")]), "no images found")
    single = tmp_path / "single"
    (single / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(single / "a" / "x.png")
    _one_line_error(
        runner.invoke(app, ["cluster", str(single), "--k", "2", "--out", str(tmp_path / "o")]),
        "need at least 2 images",
    )
    _one_line_error(
        runner.invoke(app, ["cluster", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]), "not found"
    )
    _one_line_error(runner.invoke(app, ["cluster", str(single), "--k", "1", "--out", str(tmp_path / "o")]), "k must be")


def test_cluster_lists_unreadable_files(tmp_path):
    root = _export_digits(tmp_path / "d", classes=(0, 1), per_class=3)
    (root / "1" / "notes.png").write_bytes(b"shopping list: milk, eggs")
    res = runner.invoke(app, ["cluster", str(root), "--k", "2", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "1 skipped (1 not_an_image)" in res.output and "skipped 1/notes.png" in res.output
    rows = (tmp_path / "o" / "_reports" / "embed_rejects.csv").read_text().splitlines()
    assert rows[1].startswith("1/notes.png,not_an_image")
    info = json.loads((tmp_path / "o" / "clusters.json").read_text())
    assert info["images"] == 6 and info["skipped"][0]["reason"] == "not_an_image"


def test_cluster_refuses_an_output_inside_the_input(digits):
    with pytest.raises(DataError, match="must not be the input folder"):
        cluster_images(digits, digits / "clusters", ClusterOptions(k=2))


# ---------------------------------------------------------------------------- autoencoder
@pytest.mark.slow
def test_autoencoder_trains_reconstructs_and_embeds(digits, tmp_path):
    run = tmp_path / "ae"
    res = runner.invoke(
        app,
        ["autoencoder", "train", str(digits), "--out", str(run), "--epochs", "1", "--size", "8", "--bottleneck", "6"],
    )
    assert res.exit_code == 0, res.output
    info = json.loads((run / "autoencoder.json").read_text())
    assert info["size"] == 8 and info["bottleneck"] == 6 and np.isfinite(info["loss"])
    assert (run / "autoencoder.keras").is_file() and len((run / "history.csv").read_text().splitlines()) == 2

    grid = tmp_path / "grid.png"
    res = runner.invoke(
        app, ["autoencoder", "reconstruct", str(digits), "--model", str(run), "--out", str(grid), "-n", "6"]
    )
    assert res.exit_code == 0, res.output
    img = Image.open(grid)
    assert img.size[0] > 6 * 64 and img.size[1] >= 2 * 64  # a row of inputs above a row of outputs

    for spec in (f"autoencoder:{run}", str(run)):
        emb = embed_folder(digits, EmbedOptions(model=spec))
        assert emb.embeddings.shape == (len(CLASSES) * PER_CLASS, 6) and emb.model == f"autoencoder:{run}"
    emb = embed_folder(digits, EmbedOptions(model="autoencoder"), models_dir=tmp_path)
    assert emb.embeddings.shape[1] == 6
    with pytest.raises(ConfigError, match="differs from the autoencoder"):
        embed_folder(digits, EmbedOptions(model=str(run), size=16))


def test_autoencoder_options_are_validated():
    with pytest.raises(ValueError, match="multiple of 4"):
        AutoencoderOptions(size=30)
    res = runner.invoke(app, ["autoencoder", "train", "x", "--size", "30"])
    _one_line_error(res, "multiple of 4")


def test_autoencoder_reconstruct_needs_an_autoencoder_run(digits, tmp_path):
    _one_line_error(
        runner.invoke(
            app, ["autoencoder", "reconstruct", str(digits), "--model", str(tmp_path), "--out", str(tmp_path / "g.png")]
        ),
        "is not an autoencoder run",
    )


# ----------------------------------------------------------------------- trained models
@pytest.mark.slow
def test_embed_from_a_training_run_uses_the_embedding_layer(tmp_path):
    from helpers_runs import make_run

    run = make_run(tmp_path)
    data = tmp_path / "data" / "test"
    emb = embed_folder(data, EmbedOptions(model=str(run)))
    import keras

    width = keras.models.load_model(run / "best.keras").get_layer("embedding").output.shape[-1]
    assert emb.embeddings.shape[1] == width and emb.model == f"run:{run}"
    res = cluster_images(data, tmp_path / "c", ClusterOptions(k=3, seed=0), EmbedOptions(model=str(run)))
    assert res.clustering.purity is not None and res.clustering.purity > 0.6


@pytest.mark.slow
def test_embed_from_a_registry_model_and_a_keras_file(digits, tmp_path):
    pytest.importorskip("imgclf.models.registry")
    emb = embed_folder(digits, EmbedOptions(model="cnn", weights="none", size=16))
    from imgclf.models.registry import create_model

    model = create_model("cnn", num_classes=2, input_shape=(16, 16, 3))
    width = model.get_layer("embedding").output.shape[-1]
    assert emb.embeddings.shape == (len(CLASSES) * PER_CLASS, width) and emb.size == 16
    model.save(tmp_path / "m.keras")
    emb = embed_folder(digits, EmbedOptions(model=str(tmp_path / "m.keras")))
    assert emb.embeddings.shape[1] == width and emb.size == 16  # size read from the file
