"""`imgclf compare` and several models in one `imgclf run`: fair test, grouping, files, CLI."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers_runs import make_run
from imgclf.cli.main import app
from imgclf.config import RunConfig, TrainConfig
from imgclf.errors import ConfigError
from imgclf.records.run import load_predictions, load_run_info, save_run_info

runner = CliRunner()


def _evaluated(dest: Path) -> Path:
    from imgclf.evaluate import evaluate_run

    run = make_run(dest)
    evaluate_run(run)
    return run


def _one_line_error(res, *needles):
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    for n in needles:
        assert n in res.output, res.output


# ------------------------------------------------------------------------------- fair test
def test_compare_refuses_runs_evaluated_on_different_test_splits(tmp_path):
    a = _evaluated(tmp_path / "a")
    b = make_run(tmp_path / "b")
    # b's test split differs by one image: the same file name, other pixels
    victim = sorted((tmp_path / "b" / "data" / "test" / "red").glob("*.png"))[0]
    victim.write_bytes(sorted((tmp_path / "b" / "data" / "test" / "red").glob("*.png"))[1].read_bytes())
    from imgclf.evaluate import evaluate_run

    evaluate_run(b)
    fa = json.loads((a / "metrics.json").read_text())["fingerprint"]["sha256"]
    fb = json.loads((b / "metrics.json").read_text())["fingerprint"]["sha256"]
    assert fa != fb
    out = tmp_path / "cmp"
    res = runner.invoke(app, ["compare", str(a), str(b), "--out", str(out)], terminal_width=400)
    _one_line_error(res, "different test splits", str(a), str(b), fa[:12], fb[:12], "--force")
    assert not out.exists()
    # --force shows them, with a warning, and makes no paired test across the two test sets
    res = runner.invoke(app, ["compare", str(a), str(b), "--out", str(out), "--force"], terminal_width=400)
    assert res.exit_code == 0, res.output
    assert "warning" in res.stderr.lower() and "different test splits" in res.stderr
    md = (out / "leaderboard.md").read_text()
    assert "n/a (other test set)" in md and "Warning" in md
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert {r["differs_from_best"] for r in rows} == {"best", "n/a"}


def test_compare_needs_evaluated_runs(tmp_path):
    run = make_run(tmp_path / "a")
    res = runner.invoke(app, ["compare", str(run)], terminal_width=400)
    _one_line_error(res, "metrics.json", "imgclf evaluate")
    res = runner.invoke(app, ["compare", str(tmp_path / "nope")], terminal_width=400)
    _one_line_error(res, "run not found")


def test_fingerprint_follows_the_files_and_labels_not_the_listing_order(tmp_path):
    from imgclf.records.run import split_fingerprint

    rows = [("a/1.png", "a", "00"), ("b/2.png", "b", "11")]
    assert split_fingerprint(rows) == split_fingerprint(rows[::-1])
    assert split_fingerprint(rows) != split_fingerprint([("a/1.png", "b", "00"), rows[1]])  # a label moved
    assert split_fingerprint(rows) != split_fingerprint([("a/1.png", "a", "01"), rows[1]])  # other bytes
    assert split_fingerprint(rows) != split_fingerprint(rows[:1])  # an image less


# --------------------------------------------------------------------------------- compare
def test_compare_two_models_writes_leaderboard_with_intervals_and_mcnemar(tmp_path):
    a = _evaluated(tmp_path / "a")
    b = _evaluated(tmp_path / "b")
    info = load_run_info(b)
    info.label = "cnn-copy"  # another model configuration on the same test images
    save_run_info(b, info)
    # c: a second seed of a's configuration (same test split) -> grouped with a
    c = _evaluated(tmp_path / "c")
    info = load_run_info(c)
    info.seed = 1
    save_run_info(c, info)
    for r in (a, b, c):  # every run scored the same test images: the data folders are copies
        assert (
            json.loads((r / "metrics.json").read_text())["fingerprint"]["sha256"]
            == json.loads((a / "metrics.json").read_text())["fingerprint"]["sha256"]
        )
    out = tmp_path / "cmp"
    res = runner.invoke(app, ["compare", str(a), str(b), str(c), "--out", str(out)], terminal_width=400)
    assert res.exit_code == 0, res.output
    for name in ("leaderboard.csv", "leaderboard.md", "leaderboard.png", "compare.html", "runs.csv", "compare.json"):
        assert (out / name).is_file(), name
    assert (out / "leaderboard.png").read_bytes().startswith(b"\x89PNG")
    html = (out / "compare.html").read_text()
    assert "data:image/png;base64," in html
    assert not re.search(r"""(src|href)=["'](?!data:)""", html), "compare.html must not link external files"
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert [r["model"] for r in rows] == sorted(r["model"] for r in rows) or len(rows) == 2
    by = {r["model"]: r for r in rows}
    assert set(by) == {"cnn", "cnn-copy"}
    assert by["cnn"]["runs"] == "2" and by["cnn"]["seeds"] == "0;1" and by["cnn-copy"]["runs"] == "1"
    for r in rows:
        acc, lo, hi = float(r["accuracy"]), float(r["accuracy_ci_low"]), float(r["accuracy_ci_high"])
        assert lo <= acc <= hi
        assert r["bootstrap_resamples"] == "2000" and r["ci_level"] == "0.95"
        assert int(r["parameters"]) > 0 and float(r["train_seconds"]) > 0
    # the McNemar counts are those of the two runs' per-image correctness
    best = next(r for r in rows if r["differs_from_best"] == "best")
    other = next(r for r in rows if r is not best)
    pa = load_predictions(a if best["model"] == "cnn" else b)
    pb = load_predictions(b if best["model"] == "cnn" else a)
    assert int(other["mcnemar_b"]) == int(np.sum(pa.correct & ~pb.correct))
    assert int(other["mcnemar_c"]) == int(np.sum(~pa.correct & pb.correct))
    md = (out / "leaderboard.md").read_text()
    assert "| 1 |" in md and "| 2 |" in md and "[95% CI]" in md and "Efron & Tibshirani" in md and "McNemar" in md
    # the table is printed too
    assert "cnn-copy" in res.stdout and "accuracy" in res.stdout and "leaderboard.md" in res.stdout
    # the seeds of one configuration: a folder holding runs stands for the runs in it
    res = runner.invoke(
        app, ["compare", str(tmp_path / "a"), "--out", str(tmp_path / "cmp2"), "--json"], terminal_width=400
    )
    assert res.exit_code == 0, res.output
    out_json = json.loads(res.stdout)
    assert out_json["groups"][0]["runs"] == [str(a)]


def test_compare_page_never_scrolls_sideways(browser, tmp_path):
    """In a 1,280 px window the page itself never scrolls sideways: a leaderboard wider than the
    window (15 columns of value + interval) scrolls inside its own box, its cells wrapping
    before an interval and never inside one."""
    a = _evaluated(tmp_path / "a")
    b = _evaluated(tmp_path / "b")
    info = load_run_info(b)
    info.label = "cnn-with-a-long-name"
    save_run_info(b, info)
    out = tmp_path / "cmp"
    res = runner.invoke(app, ["compare", str(a), str(b), "--out", str(out)], terminal_width=400)
    assert res.exit_code == 0, res.output
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto((out / "compare.html").as_uri())
        sizes = page.evaluate("""() => ({
            page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
            boxes: [...document.querySelectorAll('.scroll')].map(d => [d.scrollWidth, d.clientWidth]),
            cell: document.querySelector('table tr:nth-child(2) td:nth-child(4)').innerText,
            align: [...document.querySelector('table').rows[1].cells].map(
                (c, k) => [document.querySelector('table').rows[0].cells[k].innerText, c.innerText,
                           getComputedStyle(c).textAlign]),
        })""")
    finally:
        page.close()
    assert sizes["page"][0] <= sizes["page"][1], sizes
    assert len(sizes["boxes"]) == 2 and all(c <= sizes["page"][1] for _, c in sizes["boxes"]), sizes
    assert "[" in sizes["cell"] and "\n" not in sizes["cell"].split("[", 1)[1], sizes  # the interval stays whole
    # names read from the left, figures line up on the right
    align = {head: (text, how) for head, text, how in sizes["align"]}
    assert align["model"][1] == "left", sizes["align"]
    assert [how for head, text, how in sizes["align"] if text[:1].isdigit() and head != "#"] and all(
        how == "right" for head, text, how in sizes["align"] if text[:1].isdigit() and head != "#"
    ), sizes["align"]


def test_plan_runs_gives_each_model_and_seed_its_own_folder(tmp_path):
    from imgclf.run import comparison_dir, plan_runs

    cfg = RunConfig.model_validate(
        {
            "name": "exp",
            "models_dir": str(tmp_path),
            "source": {"dataset": {"name": "digits"}},
            "train": {
                "model": "cnn",
                "model_options": {"width": 16},
                "seed": 7,
                "repeats": 2,
                "epochs": 3,
                "models": ["mlp", "cnn", {"model": "cnn", "name": "wide", "model_options": {"width": 32}, "epochs": 5}],
            },
        }
    )
    plan = plan_runs(cfg)
    assert [p.run_dir.name for p in plan] == [
        "exp-mlp-s7",
        "exp-mlp-s8",
        "exp-cnn-s7",
        "exp-cnn-s8",
        "exp-wide-s7",
        "exp-wide-s8",
    ]
    assert [p.config.seed for p in plan] == [7, 8] * 3
    assert plan[0].config.model_options == {}  # cnn's builder options are not mlp's
    assert plan[2].config.model_options == {"width": 16} and plan[2].config.epochs == 3
    assert plan[4].config.model_options == {"width": 32} and plan[4].config.epochs == 5 and plan[4].named
    assert all(p.config.models == [] and p.config.repeats == 1 for p in plan)
    assert comparison_dir(cfg) == tmp_path / "exp-compare"
    # one model, one seed: the folder and configuration are as before
    single = RunConfig.model_validate(
        {"name": "exp", "models_dir": str(tmp_path), "source": {"dataset": {"name": "digits"}}}
    )
    [p] = plan_runs(single)
    assert p.run_dir == tmp_path / "exp" and p.config == single.train


def test_model_entries_are_validated_with_the_train_keys():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig.model_validate({"models": ["cnn", {"model": "vgg", "epoch": 3}]})
    with pytest.raises(ValueError, match="more than once"):
        TrainConfig.model_validate({"models": ["cnn", "cnn"]})
    with pytest.raises(ValueError, match="whole train section"):
        TrainConfig.model_validate({"models": [{"model": "cnn", "repeats": 2}]})


def test_run_models_option_errors_are_one_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"models_dir: {tmp_path / 'm'}\ndata_dir: {tmp_path / 'd'}\nsource: {{dataset: {{name: digits}}}}\n")
    res = runner.invoke(app, ["run", str(cfg), "--model", "cnn", "--models", "mlp,cnn"])
    _one_line_error(res, "--model or --models")
    res = runner.invoke(app, ["run", str(cfg), "--models", "mlp,cnnn", "--stages", "train"])
    _one_line_error(res, "cnnn", "'cnn'")
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())  # nothing trained
    with pytest.raises(ConfigError):
        from imgclf.config import load_run_config

        load_run_config(cfg, [{"train": {"repeats": 0}}])


# ---------------------------------------------------------------- two models in one `run`
@pytest.mark.slow
def test_run_two_models_on_a_digits_subset_writes_both_runs_and_the_leaderboard(tmp_path):
    cfg = tmp_path / "two.yaml"
    cfg.write_text(
        f"""
name: two
data_dir: {tmp_path / "data"}
models_dir: {tmp_path / "models"}
seed: 3
source: {{dataset: {{name: digits, limit_per_class: 12}}}}
prepare: {{size: 8}}
train:
  model: cnn
  model_options: {{width: 8, depth: [1, 1]}}
  epochs: 2
  batch_size: 16
  augment: {{flip: none}}
evaluate: {{bootstrap_resamples: 500}}
compare: {{bootstrap_resamples: 500}}
predict: {{images: []}}
"""
    )
    res = runner.invoke(app, ["run", str(cfg), "--models", "mlp,cnn", "--repeats", "2"], terminal_width=400)
    assert res.exit_code == 0, res.output + repr(res.exception)
    models = tmp_path / "models"
    runs = sorted(p.name for p in models.iterdir() if (p / "run.json").is_file())
    assert runs == ["two-cnn-s3", "two-cnn-s4", "two-mlp-s3", "two-mlp-s4"]
    fps = set()
    for r in runs:
        info = json.loads((models / r / "run.json").read_text())
        assert info["data_dir"] == str(tmp_path / "data" / "split")  # the same split for every run
        m = json.loads((models / r / "metrics.json").read_text())
        fps.add(m["fingerprint"]["sha256"])
        assert m["confidence_intervals"]["n_resamples"] == 500
        assert len(load_predictions(models / r)) == m["n_images"]
    assert len(fps) == 1
    assert json.loads((models / "two-cnn-s4" / "run.json").read_text())["seed"] == 4
    out = models / "two-compare"
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert sorted(r["model"] for r in rows) == ["cnn", "mlp"]
    for r in rows:
        assert r["runs"] == "2" and r["accuracy_std"] != ""  # two seeds: mean ± std
        assert float(r["accuracy_ci_low"]) <= float(r["accuracy"]) <= float(r["accuracy_ci_high"])
    assert (
        (out / "leaderboard.md").is_file() and (out / "leaderboard.png").is_file() and (out / "compare.html").is_file()
    )
    assert "McNemar" in res.stdout and "mlp" in res.stdout  # the leaderboard is printed
    comp = json.loads((out / "compare.json").read_text())
    assert comp["best_run"].startswith(str(models / f"two-{comp['best']}-s"))
    assert len(comp["groups"][1]["mcnemar_vs_best"]) == 2  # seed 3 with seed 3, seed 4 with seed 4


def test_compare_page_tables_align_names_left_and_keep_intervals_whole(tmp_path):
    from imgclf.report import code_spans, compare_table, write_compare_html

    t = compare_table(
        ["#", "model", "accuracy [95% CI]"], [["1", "cnn <b>", "0.9452 [0.9409, 0.9493]"], ["2", "mlp", "–"]]
    )
    assert [c["left"] for c in t["head"]] == [False, True, False]
    assert t["rows"][0][2]["text"] == "0.9452 [0.9409,\u00a00.9493]"  # breaks only before the bracket
    assert code_spans("see `a.csv` and `b`") == [("see ", False), ("a.csv", True), (" and ", False), ("b", True)]
    page = write_compare_html(
        tmp_path / "c.html",
        title="t <i>",
        columns=["#", "model"],
        rows=[["1", "cnn <b>"]],
        run_columns=["run"],
        run_rows=[["r1"]],
        chart=None,
        notes=["read `leaderboard.md`"],
        warning="different `test` sets",
    ).read_text()
    assert "cnn &lt;b&gt;" in page and "<title>t &lt;i&gt;</title>" in page and "<img" not in page
    assert "<li>read <code>leaderboard.md</code></li>" in page and "different <code>test</code> sets" in page
