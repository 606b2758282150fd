"""`imgclf evaluate`: metrics against hand-computed numbers, then a real run end to end."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from helpers_runs import CLASSES, make_run
from imgclf.cli.main import app
from imgclf.evaluate import compute_metrics, evaluate_run, expected_calibration_error
from imgclf.records.run import load_predictions

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tiny_case():
    # 3 classes a, b, c; 6 images. Rows: probabilities; argmax gives the predicted class.
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array(
        [
            [0.7, 0.2, 0.1],  # true a, pred a (0.7)
            [0.2, 0.5, 0.3],  # true a, pred b (0.5); a is 3rd -> not in top-2
            [0.1, 0.8, 0.1],  # true b, pred b (0.8)
            [0.6, 0.3, 0.1],  # true b, pred a (0.6); b 2nd -> in top-2
            [0.1, 0.1, 0.8],  # true c, pred c (0.8)
            [0.3, 0.6, 0.1],  # true c, pred b (0.6); c 3rd
        ]
    )
    return probs, labels


def test_metrics_match_hand_computed_confusion_matrix():
    probs, labels = _tiny_case()
    m = compute_metrics(probs, labels, ["a", "b", "c"], top_k=2)
    # confusion matrix by hand: rows true, columns predicted
    assert m["confusion_matrix"] == [[1, 1, 0], [1, 1, 0], [0, 1, 1]]
    assert m["accuracy"] == pytest.approx(3 / 6)
    # precision: a 1/2, b 1/3, c 1/1; recall: a 1/2, b 1/2, c 1/2
    prec = [1 / 2, 1 / 3, 1.0]
    rec = [1 / 2, 1 / 2, 1 / 2]
    f1 = [2 * p * r / (p + r) for p, r in zip(prec, rec)]
    assert m["precision_macro"] == pytest.approx(np.mean(prec))
    assert m["recall_macro"] == pytest.approx(np.mean(rec))
    assert m["f1_macro"] == pytest.approx(np.mean(f1))
    assert m["per_class"]["b"] == pytest.approx({"precision": 1 / 3, "recall": 0.5, "f1": 0.4, "support": 2})
    # top-2: images 0, 2, 3, 4 have the true class among the 2 most probable
    assert m["top_k"] == 2 and m["top_k_accuracy"] == pytest.approx(4 / 6)
    # loss: mean of -ln p(true)
    expected_loss = -np.mean(np.log([0.7, 0.2, 0.8, 0.3, 0.8, 0.1]))
    assert m["loss"] == pytest.approx(expected_loss, rel=1e-6)
    assert m["confusion_matrix_normalized"][2] == pytest.approx([0.0, 0.5, 0.5])


def test_ece_uses_15_equal_width_bins_by_hand():
    probs, labels = _tiny_case()
    ece, bins = expected_calibration_error(probs, labels)
    assert len(bins) == 15 and bins[0]["lower"] == 0 and bins[-1]["upper"] == pytest.approx(1)
    # confidences 0.7 ok | 0.5 wrong | 0.8 ok | 0.6 wrong | 0.8 ok | 0.6 wrong
    # bins of width 1/15: 0.5 -> (7/15, 8/15]; 0.6 -> (8/15, 9/15]; 0.7 -> (10/15, 11/15]; 0.8 -> (11/15, 12/15]
    by_hand = (1 * abs(0 - 0.5) + 2 * abs(0 - 0.6) + 1 * abs(1 - 0.7) + 2 * abs(1 - 0.8)) / 6
    assert ece == pytest.approx(by_hand)
    assert sum(b["count"] for b in bins) == 6
    assert bins[8]["count"] == 2 and bins[8]["accuracy"] == 0.0  # the two 0.6 errors


def test_ece_is_zero_for_perfectly_calibrated_confident_model():
    probs = np.eye(3)[[0, 1, 2, 0]]
    ece, _ = expected_calibration_error(probs, np.array([0, 1, 2, 0]))
    assert ece == pytest.approx(0.0)


def test_binary_top_k_and_metrics():
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.8, 0.2]])
    labels = np.array([0, 0, 1, 1])
    m = compute_metrics(probs, labels, ["neg", "pos"], top_k=1)
    assert m["top_k_accuracy"] == pytest.approx(m["accuracy"]) == pytest.approx(0.5)
    assert compute_metrics(probs, labels, ["neg", "pos"], top_k=5)["top_k_accuracy"] == 1.0


def test_evaluate_run_writes_metrics_plots_and_self_contained_report(tmp_path):
    run = make_run(tmp_path)
    # a corrupt file in the test split is set aside and counted, not silently dropped
    (tmp_path / "data" / "test" / "red" / "broken.png").write_bytes(PNG_MAGIC + b"garbage")
    metrics = evaluate_run(run, top_k=2)
    on_disk = json.loads((run / "metrics.json").read_text())
    for key in (
        "accuracy",
        "loss",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "top_k_accuracy",
        "ece",
        "per_class",
    ):
        assert key in on_disk, key
    assert on_disk["accuracy"] == pytest.approx(metrics["accuracy"])
    assert set(on_disk["per_class"]) == set(CLASSES)
    assert on_disk["n_images"] == 6 * len(CLASSES)
    assert on_disk["set_aside"]["count"] == 1
    assert on_disk["set_aside"]["files"][0][0].endswith("broken.png")
    assert np.sum(on_disk["confusion_matrix"]) == on_disk["n_images"]
    # the unreadable file is part of the split's fingerprint, not of the per-image predictions
    assert on_disk["fingerprint"]["n_files"] == 6 * len(CLASSES) + 1
    assert len(load_predictions(run)) == 6 * len(CLASSES)
    assert on_disk["accuracy"] >= 0.8  # solid colours are easy; the tiny model learned them
    for name in (
        "confusion_matrix.png",
        "confusion_matrix_normalized.png",
        "training_curves.png",
        "confident_errors.png",
        "reliability_diagram.png",
    ):
        data = (run / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert Image.open(run / name).size[0] > 100
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    assert not re.search(r"""(src|href)=["'](?!data:)""", html), "report must not link external files"
    assert "ECE" in html and "blue" in html


def test_evaluate_records_fingerprint_intervals_and_per_image_predictions(tmp_path):
    import hashlib

    run = make_run(tmp_path)
    m = evaluate_run(run, top_k=2)
    test = tmp_path / "data" / "test"
    # the fingerprint by hand: sha256 over the sorted "<relative path>\t<label>\t<file sha256>\n" lines
    lines = sorted(
        f"{p.relative_to(test).as_posix()}\t{p.parent.name}\t{hashlib.sha256(p.read_bytes()).hexdigest()}\n"
        for p in test.rglob("*.png")
    )
    assert m["fingerprint"]["sha256"] == hashlib.sha256("".join(lines).encode()).hexdigest()
    assert m["fingerprint"]["n_files"] == 6 * len(CLASSES)
    # per-image predictions: one row per scored image, the same accuracy as metrics.json
    preds = load_predictions(run)
    assert len(preds) == m["n_images"] and preds.class_names == list(CLASSES)
    assert set(preds.paths) == {p.relative_to(test).as_posix() for p in test.rglob("*.png")}
    assert preds.correct.mean() == pytest.approx(m["accuracy"])
    np.testing.assert_allclose(preds.probs.sum(axis=1), 1.0, atol=1e-5)
    assert (run / "predictions.csv").read_text().splitlines()[
        0
    ] == "path,sha256,label,predicted,correct,p:blue,p:green,p:red"
    # a 95 % bootstrap interval around every metric
    ci = m["confidence_intervals"]
    assert ci["level"] == 0.95 and ci["n_resamples"] == 2000 and ci["n_images"] == m["n_images"]
    for key in ("accuracy", "loss", "precision_macro", "recall_macro", "f1_macro", "top_k_accuracy", "ece"):
        iv = ci["metrics"][key]
        assert iv["low"] <= m[key] <= iv["high"], key
        assert iv["value"] == pytest.approx(m[key], abs=1e-6), key
    assert m["parameters"] > 0 and m["predict_ms_per_image"] > 0 and m["files"]["predictions"] == "predictions.csv"
    assert "bootstrap confidence intervals" in (run / "report.html").read_text()
    # the fingerprint follows the data: one image moved to another class folder changes it
    moved = sorted((test / "red").glob("*.png"))[0]
    moved.rename(test / "blue" / moved.name)
    assert evaluate_run(run)["fingerprint"]["sha256"] != m["fingerprint"]["sha256"]


def test_evaluate_other_split_does_not_overwrite_test_metrics(tmp_path):
    run = make_run(tmp_path)
    evaluate_run(run, split="val")
    assert (run / "metrics_val.json").is_file() and (run / "report_val.html").is_file()
    assert (run / "predictions_val.csv").is_file()
    assert not (run / "metrics.json").exists() and not (run / "predictions.csv").exists()


def test_evaluate_counts_test_images_with_a_near_copy_in_train(tmp_path):
    run = make_run(tmp_path)
    clean = evaluate_run(run)["leaks"]
    assert clean["checked"] and clean["compared_with"] == ["train", "val"]
    assert clean["test_images"] == 6 * len(CLASSES) and clean["test_images_with_copy"] == 0 and clean["pairs"] == 0
    assert clean["radius"] == 8 and clean["max_residual"] == 5.0 and "verified" in clean["method"]
    # a user's own split that leaks: a test image re-saved as a slightly brighter JPEG in train
    victim = sorted((tmp_path / "data" / "test" / "green").glob("*.png"))[2]
    arr = np.asarray(Image.open(victim).resize((64, 64), Image.Resampling.BICUBIC), np.float64)
    Image.fromarray(np.clip(arr * 1.05 + 4, 0, 255).astype(np.uint8)).save(
        tmp_path / "data" / "train" / "green" / "copy.jpg", quality=92
    )
    leaks = evaluate_run(run)["leaks"]
    assert leaks["test_images_with_copy"] == 1 and leaks["by_kind"] == {"near": 1}
    assert (
        leaks["copies"][0]["test"] == f"test/green/{victim.name}"
        and leaks["copies"][0]["other"] == "train/green/copy.jpg"
    )
    assert json.loads((run / "metrics.json").read_text())["leaks"]["test_images_with_copy"] == 1
    html = (run / "report.html").read_text()
    assert "Leak audit: <b>1</b> of 18 test images" in html and "train/green/copy.jpg" in html
    # the validation split is compared with train only; the training split with nothing
    assert evaluate_run(run, split="val")["leaks"]["compared_with"] == ["train"]
    assert evaluate_run(run, split="train")["leaks"] == {"checked": False, "reason": "the training split itself"}
    assert evaluate_run(run, leak_audit=False)["leaks"]["checked"] is False


def test_cli_evaluate_json_and_errors(tmp_path):
    run = make_run(tmp_path)
    res = CliRunner().invoke(app, ["evaluate", str(run), "--json", "--top-k", "2"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["top_k"] == 2 and 0 <= out["ece"] <= 1
    # a missing split folder: one line, exit 1, no traceback
    res = CliRunner().invoke(app, ["evaluate", str(run), "--data", str(tmp_path / "nope")])
    assert res.exit_code == 1
    assert "Traceback" not in res.output and "split folder not found" in res.output
    # a bad option value is a config error
    res = CliRunner().invoke(app, ["evaluate", str(run), "--split", "tset"])
    assert res.exit_code == 1 and "split" in res.output


def test_cli_evaluate_flip_tta_averages_with_the_mirror_image(tmp_path):
    from imgclf.inputs import load_image
    from imgclf.runtime import load_model

    run = make_run(tmp_path)
    res = CliRunner().invoke(app, ["evaluate", str(run), "--json", "--tta", "flip"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["tta"] == "flip" and "flip TTA" in res.stderr
    assert "test-time augmentation: flip" in (run / "report.html").read_text()
    # the scored probabilities are the mean over each image and its mirror image
    predictor = load_model(run)
    paths = sorted((tmp_path / "data" / "test").rglob("*.png"))
    x = np.stack([load_image(p, predictor.spec) for p in paths])
    plain = predictor.predict_arrays(x)
    mirrored = predictor.predict_arrays(x[:, :, ::-1])
    np.testing.assert_allclose(predictor.predict_arrays(x, tta="flip"), (plain + mirrored) / 2, atol=1e-5)
    labels = np.array([CLASSES.index(p.parent.name) for p in paths])
    assert out["accuracy"] == pytest.approx(float(np.mean(((plain + mirrored) / 2).argmax(1) == labels)))
    assert "trained without horizontal flips" not in res.stderr  # the tiny run trains with flips
    # a run trained without flips (digits): flip TTA still runs, with a warning saying why it may hurt
    from imgclf.records.run import load_run_info, save_run_info

    info = load_run_info(run)
    info.config.setdefault("augment", {})["flip"] = "none"
    save_run_info(run, info)
    res = CliRunner().invoke(app, ["evaluate", str(run), "--tta", "flip"])
    assert res.exit_code == 0, res.output
    assert "trained without horizontal flips" in res.stderr and "flip: none" in res.stderr
    res = CliRunner().invoke(app, ["evaluate", str(run), "--tta", "rotate"])
    assert res.exit_code == 1 and "tta" in res.output and "Traceback" not in res.output


def test_cli_evaluate_defaults_to_latest_run(tmp_path):
    run = make_run(tmp_path / "models" / "x")
    res = CliRunner().invoke(app, ["evaluate", "--models-dir", str(run.parent)])
    assert res.exit_code == 0, res.output
    assert (run / "metrics.json").is_file()


def test_macro_averages_match_sklearn_when_a_class_is_absent():
    from sklearn.metrics import f1_score, precision_score, recall_score

    probs = np.array([[0.8, 0.1, 0.1, 0.0], [0.2, 0.7, 0.1, 0.0], [0.6, 0.3, 0.1, 0.0], [0.1, 0.2, 0.7, 0.0]])
    labels = np.array([0, 1, 1, 2])  # class "d" is neither in this split nor predicted
    m = compute_metrics(probs, labels, ["a", "b", "c", "d"])
    pred = probs.argmax(1)
    assert m["precision_macro"] == pytest.approx(precision_score(labels, pred, average="macro", zero_division=0))
    assert m["recall_macro"] == pytest.approx(recall_score(labels, pred, average="macro", zero_division=0))
    assert m["f1_macro"] == pytest.approx(f1_score(labels, pred, average="macro", zero_division=0))
    assert m["per_class"]["d"]["support"] == 0 and len(m["confusion_matrix"]) == 4


# ------------------------------------------------------------------- the steps, one by one
def test_confident_errors_are_the_wrong_images_most_confident_first(tmp_path):
    from imgclf.evaluate import SplitPredictions, confident_errors

    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4], [0.45, 0.55]], np.float32)
    labels = np.array([0, 0, 0, 1, 1])  # wrong: rows 1 (0.8), 2 (0.7), 3 (0.6)
    paths = [tmp_path / f"{i}.png" for i in range(5)]
    rows, errors = confident_errors(SplitPredictions(probs, labels, paths), ["cat", "dog"], limit=2)
    assert rows.tolist() == [1, 2]
    assert errors[0] == {"file": str(paths[1]), "true": "cat", "predicted": "dog", "probability": pytest.approx(0.8)}
    rows, _ = confident_errors(SplitPredictions(probs[[0, 4]], labels[[0, 4]], paths[:2]), ["cat", "dog"])
    assert rows.tolist() == []


def test_output_files_of_the_test_split_have_no_suffix_and_others_do(tmp_path):
    from imgclf.evaluate import output_files, set_aside_summary

    test, val = output_files(tmp_path, "test"), output_files(tmp_path, "val")
    assert test["metrics"].name == "metrics.json" and test["report"].name == "report.html"
    assert val["metrics"].name == "metrics_val.json" and val["confusion_matrix"].name == "confusion_matrix_val.png"
    assert val["training_curves"] == test["training_curves"]  # one per run
    assert not set(test.values()) & (set(val.values()) - {test["training_curves"]})
    aside = set_aside_summary(
        [("a.png", "not_an_image", "x"), ("b.png", "truncated", "y"), ("c.png", "not_an_image", "")]
    )
    assert aside["count"] == 3 and aside["reasons"] == {"not_an_image": 2, "truncated": 1}


def test_report_shows_names_as_text_and_embeds_every_figure(tmp_path):
    from imgclf.report import plot_confusion_matrix, write_html_report

    probs, labels = _tiny_case()
    m = compute_metrics(probs, labels, ["a", "<script>alert(1)</script>", "c & d"], top_k=2)
    m.update(split="test", run="runs/x", data_dir="data/<test>", leaks={"checked": False, "reason": "--no-leak-audit"})
    m["confident_errors"] = [{"file": "x/<b>.png", "true": "a", "predicted": "c & d", "probability": 0.75}]
    png = plot_confusion_matrix(np.array(m["confusion_matrix"]), ["a", "b", "c"], tmp_path / "cm.png")
    html = write_html_report(tmp_path / "r.html", m, {"confusion_matrix": png, "training_curves": tmp_path / "no.png"})
    text = html.read_text()
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "data/&lt;test&gt;" in text and "x/&lt;b&gt;.png" in text and "c &amp; d" in text
    assert text.count("data:image/png;base64,") == 1  # the missing training curves are left out
    assert "Leak audit not run: --no-leak-audit." in text and ">0.7500<" in text
