"""Mistakes on the command line are refused in one line with exit 2, before any model loads or any file is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streamdet.cli import app

from .media import write_image

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("streamdet: error: "), lines[0]
    return lines[0]


@pytest.fixture
def image(tmp_path) -> Path:
    return write_image(tmp_path / "a.png", np.zeros((32, 48, 3), np.uint8))


@pytest.mark.parametrize("flag", ["--out", "--report"])
@pytest.mark.parametrize("where", ["folder", "missing-parent-under-a-file", "proc"])
def test_unwritable_outputs_are_refused_before_the_models_load(flag, where, image, tmp_path):
    """No checkpoint is given (the tiny config names none): reaching the models would be a different error."""
    target = {"folder": tmp_path, "missing-parent-under-a-file": image / "sub" / "r.json", "proc": Path("/proc/nope/r.json")}[where]
    line = _one_error_line(runner.invoke(app, ["scan", str(image), "--config", "tiny", flag, str(target)]))
    assert str(target) in line and ("folder" in line or "cannot write" in line)


def test_two_output_formats_are_one_error(image):
    line = _one_error_line(runner.invoke(app, ["scan", str(image), "--json", "--csv"]))
    assert "--json and --csv: choose one output format" in line


def test_two_sampling_modes_are_one_error(image):
    line = _one_error_line(runner.invoke(app, ["scan", str(image), "--every", "2", "--keyframes"]))
    assert "--every and --keyframes: choose one frame sampling option" in line


def test_a_bad_value_names_the_option_not_the_setting(image):
    line = _one_error_line(runner.invoke(app, ["scan", str(image), "--config", "tiny", "--crops", "edges"]))
    assert line.startswith("streamdet: error: --crops: expected one of 'center', 'cover' or 'faces'")


def test_a_misspelt_setting_gets_a_suggestion(image, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("thresold: 0.4\n")
    line = _one_error_line(runner.invoke(app, ["scan", str(image), "--config", str(config)]))
    assert line.endswith("unknown setting 'thresold', did you mean 'threshold'?")


def test_only_missing_inputs_are_refused_before_the_models_load(tmp_path):
    line = _one_error_line(runner.invoke(app, ["scan", str(tmp_path / "nope.mp4"), str(tmp_path / "gone.png"), "--config", "tiny"]))
    assert "nope.mp4" in line and "1 more inputs cannot be read" in line


def test_weights_path_of_an_unknown_name():
    line = _one_error_line(runner.invoke(app, ["weights", "path", "no-such-model"]))
    assert "no-such-model: not a registered checkpoint" in line


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["frames", "MISSING", "OUT"], "MISSING"),
        (["prepare", "MISSING"], "MISSING"),
        (["train", "MISSING", "--no-kd"], "MISSING"),
        (["eval", "MISSING"], "MISSING"),
    ],
)
def test_dataset_commands_name_a_missing_dataset(command, expected, tmp_path):
    args = [str(tmp_path / "missing") if a == "MISSING" else str(tmp_path / "out") if a == "OUT" else a for a in command]
    line = _one_error_line(runner.invoke(app, [*args, "--config", "tiny", "-q"] if command[0] != "train" else [*args, "--config", "tiny", "-q", "-o", str(tmp_path / "run")]))
    assert str(tmp_path / "missing") in line


def test_unexpected_failures_exit_2_in_one_line_never_1(tmp_path):
    """A bug (here: a function that raises RuntimeError) is one line and exit 2: exit 1 would read as FAKE."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    code = "import streamdet.cli.scan as c; c.check_inputs = lambda paths: (_ for _ in ()).throw(RuntimeError('boom'))\nfrom streamdet.__main__ import main\nmain()"
    done = subprocess.run([sys.executable, "-c", code, "scan", str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["streamdet: error: unexpected RuntimeError: boom (rerun with --verbose for the traceback)"]


def _commands(group, prefix=()):
    """Every command path of the click group behind the app: ("scan",), ("weights", "list"), …"""
    for name, command in group.commands.items():
        yield (*prefix, name)
        if hasattr(command, "commands"):
            yield from _commands(command, (*prefix, name))


def test_help_shows_flags_as_flags_and_no_command_has_a_type_column_for_them():
    """A flag (`--quiet`, `--help`) listed with a `<bool>` type reads as if it took a value."""
    import typer.main

    paths = [(), *_commands(typer.main.get_command(app))]
    assert ("scan",) in paths and ("weights", "list") in paths and ("compress", "prune") in paths
    for path in paths:
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0 and "--help" in shown.output, path
        assert "<bool>" not in shown.output and "BOOLEAN" not in shown.output, (path, [line for line in shown.output.splitlines() if "bool" in line.lower()])


def test_the_cpu_estimate_scales_with_the_frames_planned():
    from streamdet.cli.scan import cpu_estimate

    assert "about 3 min to 11 min" in cpu_estimate(16)  # 16 × 10 s = 160 s, 16 × 40 s = 640 s
    assert "about 10 s to 40 s" in cpu_estimate(1)
    assert "each frame takes about 10-40 s" in cpu_estimate(None)
