"""One engine for every entry point: the same folder and settings give the same frame scores, crops and verdicts
through `scan` (the CLI), `batch` (Ray, its actors on a local cluster), `calibrate`'s scoring and the Python API.

Two runs cover the settings that used to be lost on the way: cover crops with an uncertain band and both methods
(DistilDIRE and DIRE), and cover crops with an uncertain band behind the lite cascade.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from streamdet.calibrate import calibrate
from streamdet.cli import app
from streamdet.cluster import read_rows
from streamdet.config import load_config, read_config
from streamdet.engine import Engine
from streamdet.models.lite import LiteDetector, lite_checkpoint

from .checkpoints import random_dire_classifier, save_dire_classifier
from .media import make_video, write_image

ray = pytest.importorskip("ray", reason="the cross-entry-point test runs batch on a local Ray (pip install 'streamdet[ray]')")
pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.usefixtures("one_torch_thread")]
runner = CliRunner()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """16:9 and 4:3 clips and images of odd sizes: cover crops take 2 or 3 squares per frame."""
    root = tmp_path_factory.mktemp("mixed")
    make_video(root / "wide.mp4", 12, size=(96, 54))
    make_video(root / "old.mp4", 10, size=(64, 48))
    rng = np.random.default_rng(7)
    write_image(root / "still-wide.png", rng.integers(0, 256, (45, 81, 3), dtype=np.uint8))
    write_image(root / "still-43.png", rng.integers(0, 256, (51, 67, 3), dtype=np.uint8))
    return root


@pytest.fixture(scope="module")
def lite(tmp_path_factory) -> Path:
    """A lite detector in the distill-lite checkpoint format (random weights are enough to compare entry points)."""
    torch.manual_seed(5)
    path = tmp_path_factory.mktemp("lite") / "lite.pth"
    torch.save(lite_checkpoint(LiteDetector("resnet18").eval(), {"image_size": 64}), path)
    return path


@pytest.fixture(scope="module")
def dire_classifier(tmp_path_factory) -> Path:
    return save_dire_classifier(tmp_path_factory.mktemp("dire") / "dire.pth", random_dire_classifier(seed=2))


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _config(tmp_path: Path, tiny_adm_ckpt: Path, student_ckpt: Path, extra: dict) -> Path:
    """A YAML config as a user writes one: the tiny models, cover crops, a band, 3 uniform frames, and `extra`."""
    weights = {"adm": str(tiny_adm_ckpt), "student": str(student_ckpt), **extra.pop("weights", {})}
    data = {"weights": weights, "crops": "cover", "uncertain": [0.45, 0.55], "sampling": {"mode": "uniform", "frames": 3}, **extra}
    base = read_config("tiny")[0]
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**base, **data}))
    return path


def _frames(rows: list[dict]) -> dict[str, list[tuple]]:
    """Per input: each frame's index, time, crop boxes and scoring model (all exact)."""
    return {r["path"]: [(f["index"], f["time"], f.get("crop"), [c["box"] for c in f.get("crops") or []], f.get("scored_by")) for f in r["frames"]] for r in rows}


def _scores(rows: list[dict]) -> dict[str, float]:
    """Every score of every frame, crop and method, by a key naming it. Frames batched with other frames can differ
    in the last bits of float32 (a batch of 8 convolves in another order than a batch of 3), hence the tolerance."""
    out = {}
    for r in rows:
        for f in r["frames"]:
            out[f"{r['path']}@{f['index']}"] = f["score"]
            for i, crop in enumerate(f.get("crops") or []):
                out[f"{r['path']}@{f['index']}#{i}"] = crop["score"]
            for method, value in (f.get("scores") or {}).items():
                out[f"{r['path']}@{f['index']}:{method}"] = value
    return out


def _verdicts(rows: list[dict]) -> dict[str, tuple]:
    return {r["path"]: (r["status"], r["verdict"], r["flagged"], {m: v["verdict"] for m, v in (r.get("methods") or {}).items()}) for r in rows}


@pytest.mark.parametrize("run", ["both-methods", "cascade"])
def test_every_entry_point_gives_the_same_frames_crops_and_verdicts(run, folder, lite, dire_classifier, local_ray, tiny_adm_ckpt, student_ckpt, tmp_path):
    extra = (
        {"method": "both", "weights": {"dire": str(dire_classifier)}, "train": {"dire_steps": 2}}
        if run == "both-methods" else {"cascade": {"lite": str(lite), "triage": 0.5}}
    )
    config = _config(tmp_path, tiny_adm_ckpt, student_ckpt, extra)

    scanned = runner.invoke(app, ["scan", str(folder), "--config", str(config), "--json", "--quiet"])
    assert scanned.exit_code in (0, 1), scanned.output
    cli_rows = json.loads(scanned.stdout)["inputs"]
    assert len(cli_rows) == 4 and all(r["status"] == "ok" for r in cli_rows)
    assert all(f["crop"] is not None for r in cli_rows for f in r["frames"]), "cover crops reached the scan"
    wide = next(r for r in cli_rows if r["path"].endswith("wide.mp4"))
    assert len(wide["frames"][0]["crops"]) == 3, "a 96×54 frame is covered by 3 squares"
    if run == "both-methods":
        assert all(set(r["methods"]) == {"distildire", "dire"} for r in cli_rows)
    else:
        assert {f["scored_by"] for r in cli_rows for f in r["frames"]} <= {"lite", "full"}

    out = tmp_path / "batch"
    batched = runner.invoke(app, ["batch", str(folder), "--out-dir", str(out), "--cluster", local_ray, "--config", str(config), "--quiet"])
    assert batched.exit_code in (0, 1), batched.output
    batch_rows = list(read_rows(out).values())

    settings = load_config(config)
    engine = Engine.load(settings)
    api_rows = [r.to_dict() for r in engine.scan([folder])]
    calibration = calibrate(Engine.load(settings), str(folder), 0.5)

    expected, scores = _frames(cli_rows), _scores(cli_rows)
    assert _frames(batch_rows) == expected, "batch (Ray actors) picks the frames and crops scan does"
    assert _frames(api_rows) == expected, "the Python API picks the frames and crops scan does"
    assert _scores(batch_rows) == pytest.approx(scores, rel=1e-5, abs=1e-9), "batch scores them as scan does"
    assert _scores(api_rows) == pytest.approx(scores, rel=1e-5, abs=1e-9)
    assert _verdicts(batch_rows) == _verdicts(cli_rows) == _verdicts(api_rows)
    assert calibration.scores == pytest.approx({r["path"]: r["score"] for r in cli_rows}, rel=1e-5, abs=1e-9), "calibrate scores inputs as scan does"
    verdicts = {r["verdict"] for r in cli_rows}
    assert verdicts <= {"REAL", "UNCERTAIN", "FAKE"}
