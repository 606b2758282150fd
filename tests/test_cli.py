"""The CLI contract: fast --help without TensorFlow, one-line errors with exit code 1."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from imgclf.cli.main import app

runner = CliRunner()


def _commands():
    import typer.main

    group = typer.main.get_command(app)
    out = []
    for name, cmd in group.commands.items():
        out.append([name])
        for sub in getattr(cmd, "commands", {}) or {}:
            out.append([name, sub])
    return out


def test_help_lists_the_pipeline_commands():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for name in ("datasets", "prepare", "run"):
        assert name in res.output


@pytest.mark.parametrize("argv", _commands(), ids=lambda a: " ".join(a))
def test_every_help_answers_without_importing_tensorflow(argv):
    code = (
        "import sys; from imgclf.cli.main import main; sys.argv=['imgclf', *sys.argv[1:], '--help']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib', 'sklearn', 'cv2') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Usage" in proc.stdout


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.startswith("imgclf ")


def _one_line_error(res, *needles):
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    for n in needles:
        assert n in res.output, res.output


def test_missing_folder_is_one_clear_line(tmp_path):
    res = runner.invoke(app, ["prepare", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    _one_line_error(res, "not found", "nope")


def test_bad_config_key_suggests(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("source: {dataset: {name: digits}}\ntrain: {modle: cnn}\n")
    res = runner.invoke(app, ["run", str(cfg)])
    _one_line_error(res, "train.modle", "'model'")


def test_missing_config_file(tmp_path):
    res = runner.invoke(app, ["run", str(tmp_path / "missing.yaml")])
    _one_line_error(res, "config file not found")


def test_unknown_dataset(tmp_path):
    res = runner.invoke(app, ["datasets", "fashion", "--out", str(tmp_path)])
    _one_line_error(res, "unknown dataset", "fashion-mnist")


def test_error_text_in_square_brackets_is_printed_verbatim(tmp_path):
    res = runner.invoke(app, ["prepare", str(tmp_path / "[nosuch]"), "--out", str(tmp_path / "o")])
    _one_line_error(res, "[nosuch]")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["train", "data/split"], True),
        (["train", "--help"], False),
        (["predict", "a.jpg"], True),
        (["predict", "a.jpg", "--model", "m.onnx"], False),
        (["predict", "a.jpg", "-m", "m.tflite"], False),
        (["predict", "a.jpg", "--model=runs/x"], True),
        (["cluster", "photos/"], False),
        (["cluster", "photos/", "--model", "raw"], False),
        (["cluster", "photos/", "-m", "models/run1"], True),
        (["clean", "data/raw"], False),
    ],
)
def test_tensorflow_is_started_quietly_only_for_commands_that_use_it(argv, expected):
    from imgclf.cli.main import _needs_tensorflow

    assert _needs_tensorflow(argv) is expected
