"""The CLI contract: fast --help without TensorFlow, one-line errors with exit code 1."""

import re
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


#: The pipeline's stages, in the order they run: the first commands `imgclf --help` lists.
STAGES = ("scrape", "clean", "prepare", "split", "train", "evaluate", "predict")


def _listed_commands(output: str) -> list[str]:
    """Command names in the order a rich help page lists them (rows of the Commands panel)."""
    panel = output.split("Commands", 1)[1]
    return re.findall(r"^│ ([a-z][a-z-]*) ", panel, flags=re.MULTILINE)


def test_help_lists_the_stages_first_in_pipeline_order():
    res = runner.invoke(app, ["--help"], terminal_width=200)
    assert res.exit_code == 0
    listed = _listed_commands(res.output)
    assert tuple(listed[: len(STAGES)]) == STAGES, listed
    assert sorted(listed) == sorted(name for [name, *sub] in _commands() if not sub)  # every command, once
    assert listed.index("run") < listed.index("datasets") < listed.index("audit") < listed.index("review")


@pytest.mark.parametrize("argv", [[], *_commands()], ids=lambda a: " ".join(a) or "imgclf")
def test_flags_show_no_type_placeholder_in_help(argv):
    res = runner.invoke(app, [*argv, "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "<bool>" not in res.output
    for line in res.output.splitlines():  # `--help`, `--version`, `--json`: the help text follows the flag
        if re.match(r"^│ +(--help|--version|--json) ", line):
            assert re.match(r"^│ +--[a-z-]+ +[A-Z]", line), line
    # an option that takes a value keeps its placeholder
    if argv == ["evaluate"]:
        assert re.search(r"--top-k +<int>", res.output)


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


def _run_cli(args, cwd):
    """Runs `imgclf ARGS` in a fresh Python; returns (process, whether TensorFlow got imported)."""
    code = (
        "import sys; from imgclf.cli.main import main; sys.argv=['imgclf', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
        "print('TENSORFLOW', 'tensorflow' in sys.modules, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, cwd=cwd)
    return proc, "TENSORFLOW True" in proc.stderr


@pytest.mark.slow
def test_tensorflow_is_imported_by_the_commands_that_need_it_and_quietly(tmp_path):
    from helpers_runs import write_split

    write_split(tmp_path / "raw", per_class=4, seed=0)
    for split in ("train", "val"):
        write_split(tmp_path / "split" / split, per_class=4, seed=1)
    # stages that never touch a model do not import TensorFlow
    for args in (
        ["clean", "raw", "--out", "clean"],
        ["prepare", "clean", "--out", "prep", "--size", "8"],
        ["cluster", "raw", "--k", "2", "--out", "clusters"],
    ):
        proc, tf_loaded = _run_cli(args, tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert not tf_loaded, args
    # train imports it, and TensorFlow's C++ start-up lines stay hidden
    proc, tf_loaded = _run_cli(
        ["train", "--data", "split", "--epochs", "1", "--model", "mlp", "--run-dir", "run"], tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert tf_loaded
    for chatter in ("cpu_feature_guard", "oneDNN custom operations", "cuInit", "absl::InitializeLog"):
        assert chatter not in proc.stderr, chatter


def test_help_shows_real_defaults_from_the_config():
    res = runner.invoke(app, ["train", "--help"], terminal_width=200)
    assert res.exit_code == 0
    text = " ".join(res.output.replace("│", " ").split())
    assert "[default: cnn]" in text and "[default: 20]" in text and "[default: the data's size]" in text
    from imgclf.config import TrainConfig

    assert f"[default: {TrainConfig.model_fields['epochs'].default}]" in text


@pytest.mark.parametrize("argv", _commands(), ids=lambda a: " ".join(a))
def test_no_help_text_loses_its_default_to_rich_markup(argv):
    res = runner.invoke(app, [*argv, "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.replace("│", " ").split())
    import re

    assert not re.search(r" \.(\s|$)", text), text  # "[default: x]." read as a rich tag leaves " ."
    assert "[default: ]" not in text


def test_train_refuses_a_config_with_several_models(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train: {models: [mlp, cnn]}\n")
    res = runner.invoke(app, ["train", "--config", str(cfg), "--data", str(tmp_path)])
    _one_line_error(res, "train.models", "imgclf run")
