"""A built wheel, installed into a fresh virtual environment, scans with its own built-in configs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .media import make_video

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv holding the streamdet wheel built from this checkout; torch & co. come from the running environment."""
    root = tmp_path_factory.mktemp("install")
    source = root / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("configs", "streamdet"):
        shutil.copytree(REPO / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", root / "dist", source)
    assert built.returncode == 0, built.stderr
    (wheel,) = (root / "dist").glob("streamdet-*.whl")

    venv = root / "venv"
    made = _run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    # The running environment may itself be a venv, which --system-site-packages does not reach: link its
    # site-packages by a plain path line (no .pth processing there, so its editable streamdet stays out).
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "outer-env.pth").write_text("".join(f"{p}\n" for p in sorted(outer)))
    added = _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel)
    assert added.returncode == 0, added.stderr
    return venv


def _clean_env(home: Path) -> dict[str, str]:
    """The test's environment without PYTHONPATH (which points at the checkout), offline, one thread."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**env, "STREAMDET_OFFLINE": "1", "STREAMDET_HOME": str(home), "OMP_NUM_THREADS": "1"}


def test_installed_package_is_imported_from_the_venv_with_its_configs(installed, tmp_path):
    env = _clean_env(tmp_path / "home")
    code = "import streamdet.config as c; print(c.__file__); print(c.find_config('tiny'))"
    shown = _run(installed / "bin" / "python", "-c", code, cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    module, tiny = (Path(line) for line in shown.stdout.split())
    assert module.is_relative_to(installed) and tiny.is_relative_to(installed)
    assert not tiny.is_symlink() and tiny.read_bytes() == (REPO / "configs" / "tiny.yaml").read_bytes()


def test_wheel_install_scans_with_the_tiny_config_from_another_folder(installed, tmp_path, tiny_adm_ckpt, real_student_ckpt):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clip = make_video(elsewhere / "clip.mp4", 12, (64, 48), 6)
    scanned = _run(
        installed / "bin" / "streamdet", "scan", clip.name, "--config", "tiny",
        "--adm", tiny_adm_ckpt, "--student", real_student_ckpt, "--out", "report.json", "--quiet",
        cwd=elsewhere, env=_clean_env(tmp_path / "home"),
    )  # fmt: skip
    assert scanned.returncode == 0, scanned.stderr
    doc = json.loads((elsewhere / "report.json").read_text())
    assert doc["settings"]["config"] == "tiny"  # the built-in config, found inside the installed package (test above)
    (result,) = doc["inputs"]
    assert result["status"] == "ok" and result["verdict"] == "REAL" and len(result["frames"]) == 4
