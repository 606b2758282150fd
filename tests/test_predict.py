"""`imgclf predict`: files, folders, URLs from a local server, corrupt inputs, batching, safety."""

from __future__ import annotations

import csv
import io
import json
import pickle
import random
import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from helpers_runs import CLASSES, SIZE, colour_image, make_run
from imgclf.cli.main import app
from imgclf.data import tf_batches
from imgclf.engine import make_executor
from imgclf.errors import ImageError, LoaderError, ModelError
from imgclf.inputs import InputItem, InputSpec, collect_inputs, iter_batches, load_image
from imgclf.parallel import batched_ahead
from imgclf.predict import (
    DownloadOptions,
    ScoredInput,
    load_input,
    make_fetch,
    predict_inputs,
    predictions_csv,
    reduce_predictions,
    score_batch,
)
from imgclf.runtime import Predictor, load_model


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def run(tmp_path):
    return make_run(tmp_path)


@pytest.fixture()
def server():
    """Serves /red.png (a real image), /page.html (not an image) and 404 on 127.0.0.1."""
    red = _png(colour_image("red", np.random.default_rng(5), size=40))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/red.png":
                body, ctype = red, "image/png"
            elif self.path == "/page.html":
                body, ctype = b"<html><body>hello</body></html>", "text/html"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_predict_file_json(run):
    img = run.parent / "data" / "test" / "green" / "green_000.png"
    res = CliRunner().invoke(app, ["predict", str(img), "--model", str(run), "--json", "--top-k", "2"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out) == 1
    assert out[0]["label"] == "green"
    assert len(out[0]["top_k"]) == 2
    assert out[0]["top_k"][0]["probability"] >= out[0]["top_k"][1]["probability"]
    assert out[0]["error"] is None


def test_predict_folder_in_batches_matches_folder_labels(run):
    test_dir = run.parent / "data" / "test"
    preds = predict_inputs([test_dir], model=run, batch_size=4, top_k=5)
    assert len(preds) == 6 * len(CLASSES)
    assert all(len(p.top_k) == len(CLASSES) for p in preds)  # top-k capped at the class count
    correct = sum(Path(p.input).parent.name == p.label for p in preds)
    assert correct / len(preds) >= 0.8
    for p in preds:
        assert sum(prob for _, prob in p.top_k) == pytest.approx(1.0, abs=1e-4)


def test_folder_is_predicted_in_batches_not_per_image(run):
    real = load_model(run)
    calls: list[int] = []

    def fn(x):
        calls.append(len(x))
        return real.predict_batch(x)

    counting = Predictor("keras", real.source, real.class_names, real.spec, fn)
    preds = predict_inputs([run.parent / "data" / "test"], model=counting, batch_size=8)
    assert len(preds) == 18
    assert calls == [8, 8, 2]


def test_tf_data_loader_matches_thread_pool_loader_and_keeps_errors(run, tmp_path, server):
    # Keras models take the tf.data loader; it must give the thread-pool loader's pixels
    # (the same Pillow preparation as training), in input order, with each failure in place.
    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for i, c in enumerate(CLASSES * 2):
        Image.fromarray(colour_image(c, rng, size=37)).save(folder / f"{i}_{c}.png")
    (folder / "3_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    items = collect_inputs([folder, server + "/red.png", server + "/page.html"])
    assert len(items) == 2 * len(CLASSES) + 3
    got = {}
    spec = InputSpec(size=SIZE)
    fetch = make_fetch(DownloadOptions(retries=0))
    for name, source in (("threads", None), ("tf", tf_batches)):
        batches = list(iter_batches(items, spec, batch_size=4, workers=3, fetch=fetch, source=source))
        assert [len(b.items) for b in batches] == [min(4, len(items) - i) for i in range(0, len(items), 4)]
        assert [b.start for b in batches] == list(range(0, len(items), 4))
        assert [it.name for b in batches for it in b.items] == [it.name for it in items]
        got[name] = [
            b.errors[i] if i in b.errors else b.images[b.ok.index(i)] for b in batches for i in range(len(b.items))
        ]
    for a, b in zip(got["threads"], got["tf"]):
        if isinstance(a, np.ndarray):
            assert isinstance(b, np.ndarray) and b.dtype == np.uint8 and b.shape == (SIZE, SIZE, 3)
            np.testing.assert_array_equal(a, b)
        else:
            assert not isinstance(b, np.ndarray)
            assert (a.path, a.reason) == (b.path, b.reason)
    errors = [it.name for it, a in zip(items, got["tf"]) if not isinstance(a, np.ndarray)]
    assert errors == [str(folder / "3_broken.jpg"), server + "/page.html"]


def test_flip_tta_is_the_mean_over_the_mirror_image(run, tmp_path):
    # a model that only looks at the left half of the image: the mirror image sees the right half
    def left_half_is_red(x):
        red = x[:, :, : x.shape[2] // 2, 0].mean(axis=(1, 2)) > 127
        return np.stack([red, ~red], axis=1).astype(np.float32)

    half = Predictor("onnx", tmp_path, ["red", "other"], InputSpec(size=SIZE), left_half_is_red)
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    img[:, : SIZE // 2] = (230, 20, 20)
    path = tmp_path / "half.png"
    Image.fromarray(img).save(path)
    [plain] = predict_inputs([path], model=half, top_k=2)
    [tta] = predict_inputs([path], model=half, top_k=2, tta="flip")
    assert plain.top_k == [("red", 1.0), ("other", 0.0)]
    assert sorted(p for _, p in tta.top_k) == [0.5, 0.5] and tta.low_confidence is False
    res = CliRunner().invoke(app, ["predict", str(path), "--model", str(run), "--tta", "flip", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["label"] is not None


def test_predict_prepares_like_training_any_size(run, tmp_path):
    # a big non-square photo: shortest side resized and center-cropped to the run's size
    big = np.zeros((60, 200, 3), np.uint8)
    big[:, 70:130] = colour_image("blue", np.random.default_rng(3), size=60)[:, :60]  # centre is blue
    big[:, :70] = (220, 30, 30)
    big[:, 130:] = (220, 30, 30)
    path = tmp_path / "wide.jpg"
    Image.fromarray(big).save(path, quality=95)
    [p] = predict_inputs([path], model=run)
    assert p.label == "blue"


def test_corrupt_file_among_good_ones_is_reported_and_others_go_on(run, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(9)
    for i, c in enumerate(CLASSES):
        Image.fromarray(colour_image(c, rng)).save(folder / f"{i}_{c}.png")
    (folder / "1_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    res = CliRunner().invoke(
        app, ["predict", str(folder), str(tmp_path / "missing.png"), "--model", str(run), "--json"]
    )
    assert res.exit_code == 0, res.output
    out = {Path(r["input"]).name: r for r in json.loads(res.stdout)}
    assert len(out) == 5
    assert out["1_broken.jpg"]["label"] is None and out["1_broken.jpg"]["error"]
    assert "not found" in out["missing.png"]["error"]
    assert out["0_blue.png"]["label"] == "blue" and out["2_red.png"]["label"] == "red"
    assert "3 of 5 images predicted" in res.stderr
    assert "2 failed (" in res.stderr and "1 unreadable" in res.stderr


def test_all_inputs_failing_exits_1(run, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("hello")
    res = CliRunner().invoke(app, ["predict", str(bad), "--model", str(run)])
    assert res.exit_code == 1
    assert "Traceback" not in res.output


def test_predict_url_from_local_server(run, server):
    res = CliRunner().invoke(
        app,
        ["predict", f"{server}/red.png", f"{server}/page.html", f"{server}/missing.png", "--model", str(run), "--json"],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [r["input"] for r in out] == [f"{server}/red.png", f"{server}/page.html", f"{server}/missing.png"]
    assert out[0]["label"] == "red"
    assert out[1]["label"] is None and out[1]["error"]
    assert out[2]["label"] is None and out[2]["error"]


def test_csv_output_and_low_confidence_flag(run, tmp_path):
    img = tmp_path / "grey.png"
    Image.fromarray(np.full((SIZE, SIZE, 3), 128, np.uint8)).save(img)
    res = CliRunner().invoke(app, ["predict", str(img), "--model", str(run), "--json"])
    prob = json.loads(res.stdout)[0]["probability"]
    dest = tmp_path / "out" / "preds.csv"
    above = min(1.0, prob + 0.01)
    res = CliRunner().invoke(
        app, ["predict", str(img), "--model", str(run), "--csv", str(dest), "--threshold", str(above)]
    )
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(dest.open()))
    assert rows[0]["label"] in CLASSES
    assert float(rows[0]["probability"]) == pytest.approx(prob, abs=1e-5)
    assert rows[0]["low_confidence"] == ("1" if prob < above else "0")
    assert len(rows[0]["top_k"].split(";")) == 3
    below = max(0.0, prob - 0.01)
    res = CliRunner().invoke(app, ["predict", str(img), "--model", str(run), "--threshold", str(below), "--json"])
    assert json.loads(res.stdout)[0]["low_confidence"] is False
    res = CliRunner().invoke(app, ["predict", str(img), "--model", str(run), "--threshold", "1.5"])
    assert res.exit_code == 1 and "threshold" in res.output


def test_default_model_is_most_recent_run(tmp_path):
    run = make_run(tmp_path / "models" / "r1")
    img = run.parent / "data" / "test" / "blue" / "blue_000.png"
    res = CliRunner().invoke(app, ["predict", str(img), "--models-dir", str(run.parent), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["label"] == "blue"
    res = CliRunner().invoke(app, ["predict", str(img), "--models-dir", str(tmp_path / "empty")])
    assert res.exit_code == 1 and "no trained model" in res.output


def test_unsafe_model_is_refused(run, tmp_path):
    """A .keras file with a Lambda layer (arbitrary Python) is not loaded: safe_mode=True."""
    import keras

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Lambda(lambda t: t / 255.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    model.save(run / "best.keras")
    with pytest.raises(ModelError, match="safely"):
        load_model(run)
    img = run.parent / "data" / "test" / "blue" / "blue_000.png"
    res = CliRunner().invoke(app, ["predict", str(img), "--model", str(run)])
    assert res.exit_code == 1 and "Traceback" not in res.output


def test_collect_inputs_skips_hidden_and_non_images(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"")
    (tmp_path / "a" / "notes.txt").write_text("x")
    (tmp_path / "_rejected").mkdir()
    (tmp_path / "_rejected" / "y.png").write_bytes(b"")
    items = collect_inputs([tmp_path, "https://example.invalid/p.jpg"])
    assert [i.name for i in items] == [str(tmp_path / "a" / "x.png"), "https://example.invalid/p.jpg"]
    assert items[1].url is not None


def test_json_and_csv_together_is_an_error(run, tmp_path):
    res = CliRunner().invoke(app, ["predict", "x.png", "--model", str(run), "--json", "--csv", str(tmp_path / "a.csv")])
    assert res.exit_code == 1 and "cannot be used together" in res.output


# ------------------------------------------------------------ map, reduce and batching, directly
def mean_colour_model(x: np.ndarray) -> np.ndarray:
    """A real (if tiny) classifier of `CLASSES` order (blue, green, red): softmax of the mean colour."""
    mean = x.reshape(len(x), -1, 3).astype(np.float64).mean(axis=1)[:, ::-1] / 32.0  # RGB -> B, G, R
    e = np.exp(mean - mean.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture()
def mixed_folder(tmp_path):
    """Two readable pictures (red 40x30, blue 17x23), a broken JPEG and an empty PNG."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(colour_image("red", rng, size=40)[:30]).save(folder / "a_red.png")
    Image.fromarray(colour_image("blue", rng, size=23)[:, :17]).save(folder / "b_blue.jpg", quality=95)
    (folder / "c_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "d_empty.png").write_bytes(b"")
    return folder


def test_map_gives_model_input_or_the_error_of_each_input(mixed_folder, tmp_path):
    spec = InputSpec(size=SIZE)
    items = collect_inputs([mixed_folder, tmp_path / "missing.png"])
    load = partial(load_input, spec=spec, download=DownloadOptions(retries=0))
    out = {it.name: load(it) for it in items}
    red = out[str(mixed_folder / "a_red.png")]
    assert isinstance(red, np.ndarray) and red.dtype == np.uint8 and red.shape == (SIZE, SIZE, 3)
    np.testing.assert_array_equal(red, load_image(mixed_folder / "a_red.png", spec))  # training's own function
    assert isinstance(out[str(mixed_folder / "b_blue.jpg")], np.ndarray)
    for name in ("c_broken.jpg", "d_empty.png"):
        err = out[str(mixed_folder / name)]
        assert isinstance(err, ImageError) and err.path == str(mixed_folder / name)
    missing = out[str(tmp_path / "missing.png")]
    assert isinstance(missing, ImageError) and missing.reason == "unreadable" and "not found" in missing.detail
    # picklable, so a process pool or a cluster can run it: the copy gives the same pixels
    again = pickle.loads(pickle.dumps(load))(items[0])
    np.testing.assert_array_equal(again, red)


def test_map_stops_on_a_loader_bug_naming_the_input(mixed_folder):
    broken_spec = InputSpec(size=SIZE).model_copy(update={"size": 0})  # a bug, not a bad image
    item = InputItem(name="a_red.png", path=mixed_folder / "a_red.png")
    with pytest.raises(LoaderError) as info:
        load_input(item, spec=broken_spec)
    assert "a_red.png" in str(info.value) and isinstance(info.value.__cause__, ZeroDivisionError)
    model = Predictor("onnx", mixed_folder, list(CLASSES), broken_spec, mean_colour_model)
    with pytest.raises(LoaderError):  # predict stops: the image is not dropped, nor reported as unreadable
        predict_inputs([mixed_folder], model=model, show_progress=False)


def test_model_per_batch_then_reduce_counts_the_unreadable(mixed_folder):
    spec = InputSpec(size=SIZE)
    model = Predictor("onnx", mixed_folder, list(CLASSES), spec, mean_colour_model)
    items = collect_inputs([mixed_folder])
    loaded = [load_input(it, spec=spec) for it in items]
    scored = score_batch(model, items, loaded, start=10)
    assert [s.index for s in scored] == [10, 11, 12, 13]
    assert [s.error is None for s in scored] == [True, True, False, False]
    plan = reduce_predictions(scored, CLASSES, top_k=2, threshold=0.5)
    assert [p.input for p in plan.predictions] == [it.name for it in items]  # every input has its row
    assert [p.label for p in plan.predictions] == ["red", "blue", None, None]
    assert all(len(p.top_k) == 2 for p in plan.predictions[:2]) and plan.predictions[2].top_k == []
    assert plan.summary.total == 4 and plan.summary.predicted == 2 and plan.summary.failed_total == 2
    assert sum(plan.summary.failed.values()) == 2  # the broken and the empty file are counted
    csv_rows = list(csv.DictReader(io.StringIO(predictions_csv(plan.predictions))))
    assert [r["error"] != "" for r in csv_rows] == [False, False, True, True]


def test_reduce_is_pure_and_ignores_arrival_order():
    probs = np.array([[0.2, 0.3, 0.5], [0.7, 0.2, 0.1], [0.34, 0.33, 0.33]], np.float32)
    scored = [
        ScoredInput(0, "x.png", probs=probs[0]),
        ScoredInput(1, "bad.png", error=ImageError("bad.png", "truncated", "cut short")),
        ScoredInput(2, "y.png", probs=probs[1]),
        ScoredInput(3, "z.png", probs=probs[2]),
        ScoredInput(4, "gone.png", error=ImageError("gone.png", "unreadable", "file not found")),
    ]
    want = reduce_predictions(scored, CLASSES, top_k=3, threshold=0.4)
    shuffled = scored[:]
    random.Random(3).shuffle(shuffled)
    assert reduce_predictions(shuffled, CLASSES, top_k=3, threshold=0.4) == want
    assert [p.input for p in want.predictions] == ["x.png", "bad.png", "y.png", "z.png", "gone.png"]
    assert [lab for lab, _ in want.predictions[0].top_k] == ["red", "green", "blue"]
    assert [p for _, p in want.predictions[0].top_k] == pytest.approx([0.5, 0.3, 0.2])
    assert want.predictions[1].error == "truncated: cut short" and want.predictions[1].label is None
    assert [p.low_confidence for p in want.predictions] == [False, False, False, True, False]
    assert want.summary.failed == {"truncated": 1, "unreadable": 1}
    assert (want.summary.predicted, want.summary.low_confidence) == (3, 1)


def test_predict_inputs_runs_its_map_on_the_executor_given(mixed_folder):
    spec = InputSpec(size=SIZE)
    calls: list[int] = []

    def fn(x):
        calls.append(len(x))
        return mean_colour_model(x)

    model = Predictor("onnx", mixed_folder, list(CLASSES), spec, fn)
    one = predict_inputs([mixed_folder], model=model, batch_size=3, executor=make_executor("local", 1))
    many = predict_inputs([mixed_folder], model=model, batch_size=3, workers=4)
    assert one == many
    assert calls == [2, 2]  # per run: one model call on the 2 of the first 3 inputs that loaded; none for the 4th
    assert [p.label for p in one] == ["red", "blue", None, None]


def test_batched_ahead_keeps_order_and_stays_one_batch_ahead():
    pulled: list[int] = []

    def numbers():
        for i in range(100):
            pulled.append(i)
            yield i

    batches = batched_ahead(numbers(), 8)
    first = next(batches)
    time.sleep(0.3)  # the caller works on batch 0; the next batch is gathered meanwhile, no more
    assert first == list(range(8))
    assert len(pulled) == 16
    rest = list(batches)
    assert [len(b) for b in rest] == [8] * 11 + [4]
    assert [x for b in [first, *rest] for x in b] == list(range(100))


def test_batched_ahead_raises_an_error_after_the_batches_before_it_and_stops_early():
    def failing():
        yield from range(5)
        raise KeyError("item 5")

    batches = batched_ahead(failing(), 2)
    assert next(batches) == [0, 1] and next(batches) == [2, 3]
    with pytest.raises(KeyError, match="item 5"):
        next(batches)
    closed = []

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(True)

    batches = batched_ahead(endless(), 4)
    assert next(batches) == [0, 1, 2, 3]
    batches.close()  # the caller stops early: the gatherer ends and closes the source
    assert closed == [True]
    with pytest.raises(ValueError, match="batch_size"):
        next(batched_ahead([], 0))
