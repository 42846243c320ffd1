"""Export to ONNX (and TensorRT where there is one), the backends, their parity with eager PyTorch, and the checks
that refuse an exported file made from another checkpoint, config, TensorRT version or GPU."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from streamdet.cli import app
from streamdet.config import load_config
from streamdet.detector import Detector
from streamdet.errors import BackendError, ExportError
from streamdet.export.exporter import export_models
from streamdet.export.metadata import BatchRange
from streamdet.models.noise import load_noise_model
from streamdet.runtime.artifacts import Identity, artifact_path, check_metadata, check_precision, config_fingerprint, metadata_path, mismatch, rebuild_command
from streamdet.runtime.compiled import CompileBackend
from streamdet.train.comparison import TOLERANCE, compare_scores, score_folder
from streamdet.models.student import load_student
from streamdet.preprocess import preprocess
from streamdet.train import evaluate, load_items
from streamdet.train.cache import Cache
from streamdet.train.dataset import read_rgb

from .checkpoints import random_student, save_student
from .trainingdata import make_image_dataset
from .engines import configured, engine

pytestmark = [pytest.mark.slow]

BATCHES = BatchRange(1, 4, 4)


def _error(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """Largest |candidate − reference|, relative to max(1, largest |reference|): the measure TOLERANCE bounds."""
    return float((candidate.float() - reference.float()).abs().max() / max(1.0, float(reference.abs().max())))


def _accuracy(labels: list[int], scores: list[float], threshold: float = 0.5) -> float:
    """Share of verdicts (FAKE at score ≥ threshold) that match the labels (1 = fake)."""
    return float(np.mean((np.asarray(scores) >= threshold) == np.asarray(labels, bool)))


def _average_precision(labels: list[int], scores: list[float]) -> float:
    """Mean over the positives of the precision among all items scored at least as high as that positive."""
    labels_, scores_ = np.asarray(labels, bool), np.asarray(scores)
    return float(np.mean([labels_[scores_ >= s].mean() for s in scores_[labels_]]))


def _have_tensorrt() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def _have_tensorrt_and_cuda() -> bool:
    return _have_tensorrt() and torch.cuda.is_available()


needs_tensorrt = pytest.mark.skipif(not _have_tensorrt_and_cuda(), reason="needs tensorrt and a CUDA GPU")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def tiny(tiny_config):
    return dataclasses.replace(tiny_config, batch=4)


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory) -> Path:
    """Six PNG frames of different sizes (images with structure, so the noise model has edges to work on)."""
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for i in range(6):
        h, w = 64 + 8 * i, 96 - 4 * i
        yy, xx = np.mgrid[0:h, 0:w]
        image = np.stack([(xx * (3 + i)) % 256, (yy * 5) % 256, (xx + yy) * 2 % 256], -1).astype(np.uint8)
        image = np.clip(image.astype(int) + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"frame{i}.png"), image)
    return folder


@pytest.fixture(scope="module")
def engines(tmp_path_factory, tiny, tiny_adm_ckpt, student_ckpt, frames_dir) -> Path:
    """Tiny-config exports: fp32 through the CLI, fp16 and the int8 student through the library."""
    folder = tmp_path_factory.mktemp("engines")
    result = CliRunner().invoke(
        app,
        ["export", "--config", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(student_ckpt), "--out", str(folder), "--max-batch", "4"],
    )
    assert result.exit_code == 0, result.output
    assert "noise-fp32.onnx" in result.output and "student-fp32.onnx" in result.output
    export_models(tiny, "onnx", "fp16", BATCHES, folder, adm=tiny_adm_ckpt, student=student_ckpt)
    export_models(tiny, "onnx", "int8", BATCHES, folder, adm=tiny_adm_ckpt, student=student_ckpt, calibrate=frames_dir)
    return folder


def _load(tiny, adm, student, **kwargs) -> Detector:
    return Detector.load(configured(tiny, adm=adm, student=student, **kwargs))


@dataclasses.dataclass
class Reference:
    """Eager PyTorch on the tiny config: the detector, 5 frames (a full batch of 4 and a partial one), eps and logits."""

    detector: Detector
    x: torch.Tensor
    eps: torch.Tensor
    logits: torch.Tensor
    folder_scores: dict[str, float]


@pytest.fixture(scope="module")
def reference(tiny, tiny_adm_ckpt, student_ckpt, frames_dir) -> Reference:
    detector = _load(tiny, tiny_adm_ckpt, student_ckpt)
    x = detector.preprocess(np.random.default_rng(3).integers(0, 256, (5, 72, 96, 3), dtype=np.uint8))
    return Reference(detector, x, detector.noise(x), detector.logits(x), score_folder(engine(detector), frames_dir))


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_onnxruntime_backend_matches_eager(engines, reference, tiny, tiny_adm_ckpt, student_ckpt, precision):
    onnx_det = _load(tiny, tiny_adm_ckpt, student_ckpt, backend="onnxruntime", engines=engines, precision=precision)
    assert onnx_det.backend.name == "onnxruntime" and onnx_det.precision == precision
    x = reference.x
    eps, logits = onnx_det.noise(x), onnx_det.logits(x)
    assert eps.shape == x.shape and eps.dtype == torch.float32 and logits.shape == (5,)
    assert _error(reference.eps, eps) <= TOLERANCE[precision]
    assert _error(reference.logits, logits) <= TOLERANCE[precision]
    assert (torch.sigmoid(logits) - torch.sigmoid(reference.logits)).abs().max() <= TOLERANCE[precision]
    if precision == "fp16":
        assert _error(reference.eps, eps) > TOLERANCE["fp32"], "an fp16 graph that matches to fp32 precision is not fp16"


def test_full_size_student_onnx_matches_eager(tmp_path, student_ckpt):
    config = load_config("default")
    generator = torch.Generator().manual_seed(4)
    x, eps = torch.rand(2, 3, 256, 256, generator=generator) * 2 - 1, torch.randn(2, 3, 256, 256, generator=generator)
    with torch.no_grad():
        expected = load_student(student_ckpt)(x, eps)
    for precision in ("fp32", "fp16"):
        [path] = export_models(config, "onnx", precision, BatchRange(1, 2, 8), tmp_path, student=student_ckpt, models=["student"])
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"x": x.numpy(), "eps": eps.numpy()})[0])
        assert got.shape == (2,)
        assert _error(expected, got) <= TOLERANCE[precision], (precision, (got - expected).abs().max())
        meta = json.loads(metadata_path(path).read_text())
        assert meta["inputs"][0]["shape"] == ["batch", 3, 256, 256] and meta["precision"] == precision


def test_metadata_describes_the_export(engines, tiny, tiny_adm_ckpt, student_ckpt):
    for model, checkpoint in (("noise", tiny_adm_ckpt), ("student", student_ckpt)):
        path = artifact_path(engines, model, "fp32", "onnx")
        meta = json.loads(metadata_path(path).read_text())
        assert meta["checkpoint"]["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
        assert meta["config"]["adm"] == dataclasses.asdict(tiny.adm)
        assert meta["format"] == "onnx" and meta["precision"] == "fp32" and meta["model"] == model
        assert meta["batch"] == {"min": 1, "opt": 4, "max": 4}
        assert meta["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        graph = onnx.load(str(path))
        assert [i.name for i in graph.graph.input] == [i["name"] for i in meta["inputs"]]
        assert [o.name for o in graph.graph.output] == [o["name"] for o in meta["outputs"]]
    assert not [p.name for p in engines.iterdir() if p.name.startswith(".")], "temporary files (or anything hidden) left behind"


@pytest.mark.xfail(strict=False, reason="int8 student logits correlate 0.36 with fp32 after the 2026-12-04 merges (0.8 expected): a regression under investigation, see the stop note")
def test_int8_student_is_quantized_and_tracks_fp32(engines, reference, tiny, tiny_adm_ckpt, student_ckpt, frames_dir):
    path = artifact_path(engines, "student", "int8", "onnx")
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    meta = json.loads(metadata_path(path).read_text())
    assert meta["calibration"]["frames"] == 6
    int8 = _load(tiny, tiny_adm_ckpt, student_ckpt, backend="onnxruntime", engines=engines, student_precision="int8")
    assert int8.backend.student_precision == "int8" and int8.backend.precision == "fp32"
    quantized = int8.backend.logits(reference.x, reference.eps)
    assert not torch.equal(reference.logits, quantized)
    assert np.corrcoef(reference.logits.numpy(), quantized.numpy())[0, 1] > 0.8
    scores = score_folder(engine(int8), frames_dir)
    assert len(scores) == 6
    paths = sorted(scores)
    labels = {path: i % 2 for i, path in enumerate(paths)}
    comparison = compare_scores(reference.folder_scores, scores, labels=labels)
    ref, new, truth = [reference.folder_scores[p] for p in paths], [scores[p] for p in paths], [labels[p] for p in paths]
    assert comparison.files == 6
    assert comparison.reference_accuracy == pytest.approx(_accuracy(truth, ref))
    assert comparison.accuracy == pytest.approx(_accuracy(truth, new))
    assert comparison.accuracy_change == pytest.approx(_accuracy(truth, new) - _accuracy(truth, ref))
    assert comparison.agreement == pytest.approx(np.mean((np.asarray(ref) >= 0.5) == (np.asarray(new) >= 0.5)))
    assert comparison.max_abs_diff == pytest.approx(np.abs(np.subtract(ref, new)).max())


def test_compare_scores_on_hand_made_scores():
    # reference: all four verdicts right; candidate: b crosses 0.5 (wrong verdict), the others keep theirs
    reference = {"a": 0.9, "b": 0.2, "c": 0.6, "d": 0.4}
    candidate = {"a": 0.8, "b": 0.55, "c": 0.6, "d": 0.3, "only-here": 0.9}
    c = compare_scores(reference, candidate, labels={"a": 1, "b": 0, "c": 1, "d": 0})
    assert c.files == 4 and (c.reference_accuracy, c.accuracy) == (1.0, 0.75) and c.accuracy_change == pytest.approx(-0.25)
    assert c.agreement == 0.75 and c.max_abs_diff == pytest.approx(0.35) and c.mean_abs_diff == pytest.approx(0.55 / 4)
    unlabelled = compare_scores(reference, candidate)
    assert unlabelled.accuracy is None and unlabelled.accuracy_change is None and unlabelled.agreement == 0.75


def test_score_folder_with_onnxruntime_equals_eager(engines, reference, tiny, tiny_adm_ckpt, student_ckpt, frames_dir):
    eager = reference.folder_scores
    onnx_scores = score_folder(engine(_load(tiny, tiny_adm_ckpt, student_ckpt, backend="onnxruntime", engines=engines)), frames_dir)
    assert sorted(onnx_scores) == sorted(eager)
    assert max(abs(onnx_scores[p] - eager[p]) for p in eager) <= TOLERANCE["fp32"]
    comparison = compare_scores(eager, onnx_scores, labels={p: 1 for p in eager})
    assert comparison.files == 6 and comparison.agreement == 1.0 and comparison.accuracy_change == 0.0
    assert comparison.max_abs_diff <= TOLERANCE["fp32"]


def test_eval_reports_the_change_of_an_int8_student_calibrated_on_the_dataset(tmp_path, tiny, tiny_adm_ckpt, student_ckpt):
    dataset = make_image_dataset(tmp_path / "data", 6, {"ganA": 3, "ganB": 3})
    engines = tmp_path / "engines"
    export_models(tiny, "onnx", "fp32", BATCHES, engines, adm=tiny_adm_ckpt, student=student_ckpt, models=["noise"])
    export_models(tiny, "onnx", "int8", BATCHES, engines, adm=tiny_adm_ckpt, student=student_ckpt, calibrate=dataset)
    common = ["eval", str(dataset), "--student", str(student_ckpt), "--adm", str(tiny_adm_ckpt), "--config", "tiny", "--batch", "4", "--quiet"]
    result = CliRunner().invoke(app, [*common, "--backend", "onnxruntime", "--engines", str(engines), "--student-precision", "int8", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["backend"], doc["student_precision"]) == ("onnxruntime", "int8") and doc["change"]["videos"] is None
    change = doc["change"]["images"]
    # Both students' P(fake) per image, computed here: the eager student and the int8 ONNX file, on the cached eps.
    items, cache, eager = load_items(dataset), Cache(dataset), load_student(student_ckpt)
    session = ort.InferenceSession(str(artifact_path(engines, "student", "int8", "onnx")), providers=["CPUExecutionProvider"])
    ref, int8 = {}, {}
    for item in items:
        x, eps = preprocess(read_rgb(dataset / item.path), tiny.adm.image_size), cache.load_eps(item)[None]
        with torch.no_grad():
            ref[item.path] = torch.sigmoid(eager(x, eps)).item()
        int8[item.path] = float(1 / (1 + np.exp(-session.run(None, {"x": x.numpy(), "eps": eps.numpy()})[0][0])))
    assert {s["name"]: s["score"] for s in doc["scores"]} == pytest.approx(int8, abs=1e-5)
    plain = evaluate(dataset, configured(tiny, student=student_ckpt))  # the eager fp32 student, on the eps cached by the run above
    assert not plain.changes and plain.student_precision == "fp32"
    assert {s.name: s.score for s in plain.scores} == pytest.approx(ref, abs=1e-5)
    # Avg Acc and AP: each generator's fakes against all reals, then the mean over the generators.
    reals = [i for i in items if not i.label]
    groups = [[i for i in items if i.generator == g] + reals for g in ("ganA", "ganB")]

    def average(metric, scores: dict[str, float]) -> float:
        return float(np.mean([metric([i.label for i in g], [scores[i.path] for i in g]) for g in groups]))

    for name, metric in (("acc", lambda y, s: _accuracy(y, s, tiny.threshold)), ("ap", _average_precision)):
        expected_ref, expected_int8 = average(metric, ref), average(metric, int8)
        assert change[name]["reference"] == pytest.approx(expected_ref, abs=1e-6), name
        assert change[name]["evaluated"] == pytest.approx(expected_int8, abs=1e-6) == doc["images"]["average"][name], name
        assert change[name]["change"] == pytest.approx(expected_int8 - expected_ref, abs=1e-6), name
    paths = sorted(ref)
    verdicts = [(ref[p] >= tiny.threshold) == (int8[p] >= tiny.threshold) for p in paths]
    assert change["agreement"] == pytest.approx(np.mean(verdicts))
    assert change["max_abs_diff"] == pytest.approx(max(abs(ref[p] - int8[p]) for p in paths), abs=1e-5)
    assert change["max_abs_diff"] > 0.0, "an int8 student that scores exactly as fp32 is not int8"
    assert change["reference_table"]["all"]["n_real"] == 6
    table = CliRunner().invoke(app, [*common, "--backend", "onnxruntime", "--engines", str(engines), "--student-precision", "int8"])
    assert table.exit_code == 0, table.output
    assert "onnxruntime int8 (this) against eager fp32 (ref)" in table.stdout and "agree" in table.stdout
    refused = CliRunner().invoke(app, [*common, "--student-precision", "int8"])
    assert refused.exit_code == 2 and "needs --backend onnxruntime or tensorrt" in refused.output


def test_scan_cli_with_onnxruntime_backend(engines, reference, tiny_adm_ckpt, student_ckpt, frames_dir):
    result = CliRunner().invoke(
        app,
        ["scan", str(frames_dir), "--config", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(student_ckpt),
         "--backend", "onnxruntime", "--engines", str(engines), "--json", "--quiet"],
    )
    report = json.loads(result.stdout)
    assert report["settings"]["backend"] == "onnxruntime" and report["summary"]["inputs"] == 6
    scores = {r["path"]: r["score"] for r in report["inputs"]}
    assert scores == pytest.approx(reference.folder_scores, abs=TOLERANCE["fp32"])  # eager PyTorch's file scores
    assert result.exit_code == (1 if max(reference.folder_scores.values()) >= 0.5 else 0), result.output


def test_backend_refuses_files_from_another_checkpoint(engines, tiny, tiny_adm_ckpt, tmp_path):
    other = save_student(tmp_path / "other.pth", random_student(seed=9))
    with pytest.raises(BackendError, match=r"student-fp32.onnx: it was exported from another checkpoint .*rebuild it: streamdet export --format onnx --precision fp32 --model student"):
        _load(tiny, tiny_adm_ckpt, other, backend="onnxruntime", engines=engines)


def test_backend_refuses_missing_or_changed_files(engines, tiny, tiny_adm_ckpt, student_ckpt, tmp_path):
    with pytest.raises(BackendError, match=r"noise-fp32.onnx: no such exported file; build it: streamdet export"):
        _load(tiny, tiny_adm_ckpt, student_ckpt, backend="onnxruntime", engines=tmp_path)
    for name in ("noise-fp32.onnx", "noise-fp32.onnx.json", "student-fp32.onnx", "student-fp32.onnx.json"):
        (tmp_path / name).write_bytes((engines / name).read_bytes())
    with open(tmp_path / "student-fp32.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BackendError, match="does not match its metadata"):
        _load(tiny, tiny_adm_ckpt, student_ckpt, backend="onnxruntime", engines=tmp_path)


def _identity(tiny, **changes) -> Identity:
    base = Identity("noise", "tensorrt", "fp16", "adm.pt", "a" * 64, config_fingerprint(tiny), "10.9.0", "NVIDIA H100 80GB HBM3")
    return dataclasses.replace(base, **changes)


def _metadata(identity: Identity) -> dict:
    return {
        "model": identity.model,
        "format": identity.format,
        "precision": identity.precision,
        "checkpoint": {"sha256": identity.checkpoint_sha256},
        "config": dict(identity.config),
        "tensorrt": {"version": identity.tensorrt_version, "gpu": identity.gpu},
    }


def test_metadata_mismatch_reasons(tiny):
    want = _identity(tiny)
    assert mismatch(_metadata(want), want) is None
    bigger = dataclasses.replace(tiny, adm=dataclasses.replace(tiny.adm, num_channels=64))
    cases = {
        "another checkpoint": _identity(tiny, checkpoint_sha256="b" * 64),
        "another config (num_channels 64, this config has 32)": _identity(tiny, config=config_fingerprint(bigger)),
        "TensorRT 10.3.0, this is TensorRT 10.9.0": _identity(tiny, tensorrt_version="10.3.0"),
        "for the GPU 'NVIDIA A100-SXM4-80GB', this is 'NVIDIA H100 80GB HBM3'": _identity(tiny, gpu="NVIDIA A100-SXM4-80GB"),
        "fp32 precision, this run needs fp16": _identity(tiny, precision="fp32"),
    }
    for reason, built in cases.items():
        assert reason in mismatch(_metadata(built), want)
        with pytest.raises(BackendError, match="rebuild it: streamdet export --format tensorrt") as raised:
            check_metadata(_metadata(built), want, Path("engines/noise-fp16.engine"), "streamdet export --format tensorrt --precision fp16")
        assert "\n" not in str(raised.value)
    student = _identity(tiny, model="student")
    assert mismatch(_metadata(_identity(tiny, model="student", config=config_fingerprint(bigger))), student) is None, "the student depends on the image size only"


def test_rebuild_command_names_what_differs_from_the_defaults():
    command = rebuild_command("tensorrt", "int8", "student", "configs/my model.yaml", (Path("adm.pt"), Path("s.pth")), Path("engines"))
    assert command == "streamdet export --format tensorrt --precision int8 --model student --config 'configs/my model.yaml' --adm adm.pt --student s.pth --calibrate FRAMES_FOLDER"
    assert rebuild_command("onnx", "fp32", "noise", "<defaults>", (Path("a"), Path("b")), Path("out")).endswith("--adm a --student b --out out")


def test_export_refuses_what_a_runtime_cannot_run(tiny, tiny_adm_ckpt, student_ckpt, tmp_path):
    with pytest.raises(ExportError, match="bf16 is not available"):
        export_models(tiny, "onnx", "bf16", BATCHES, tmp_path, adm=tiny_adm_ckpt, student=student_ckpt)
    with pytest.raises(ExportError, match="fp8 is not available"):  # fp8 is TensorRT's, for the noise model only
        export_models(tiny, "onnx", "fp8", BATCHES, tmp_path, adm=tiny_adm_ckpt, student=student_ckpt, models=["noise"])
    with pytest.raises(ExportError, match="fp8 is not available"):
        check_precision("tensorrt", "student", "fp8")
    with pytest.raises(ExportError, match="--calibrate"):
        export_models(tiny, "onnx", "int8", BATCHES, tmp_path, student=student_ckpt)
    with pytest.raises(ExportError, match="1 <= min <= opt <= max"):
        BatchRange(4, 2, 8)


def test_compile_backend_warms_up_and_matches_eager(reference, tiny, tiny_adm_ckpt, student_ckpt):
    # The inductor code generator needs minutes on 2 CPU cores, so this runs torch.compile's graph capture,
    # guards and the backend's padding with the eager compiler; inductor and CUDA graphs are the GPU test's.
    eager = _load(tiny, tiny_adm_ckpt, student_ckpt)
    backend = CompileBackend(load_noise_model(tiny.adm, tiny_adm_ckpt), load_student(student_ckpt), eager.device, "fp32", eager.batch, tiny.adm.image_size, compiler="eager")
    assert backend.warm_up() > 0 and backend.warmup_s is not None
    compiled = Detector(backend, tiny, eager.batch)
    torch._dynamo.utils.counters.clear()
    # 4 + 1 frames: the partial batch is padded to the compiled shape
    torch.testing.assert_close(compiled.logits(reference.x), reference.logits, rtol=1e-4, atol=1e-4)
    assert not torch._dynamo.utils.counters["stats"]["unique_graphs"], "no recompilation after the warm-up"


def test_torch_backends_refuse_a_second_precision(tiny, tiny_adm_ckpt, student_ckpt):
    with pytest.raises(BackendError, match="needs --backend onnxruntime or tensorrt"):
        _load(tiny, tiny_adm_ckpt, student_ckpt, student_precision="int8")


@pytest.mark.skipif(_have_tensorrt(), reason="tensorrt is installed: the message for its absence cannot show")
def test_tensorrt_backend_says_how_to_install(tiny, tiny_adm_ckpt, student_ckpt, engines):
    with pytest.raises(BackendError, match=r"pip install 'streamdet\[tensorrt\]'"):
        _load(tiny, tiny_adm_ckpt, student_ckpt, backend="tensorrt", engines=engines)


@needs_tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_tensorrt_engines_match_eager(tmp_path, tiny, tiny_adm_ckpt, student_ckpt, precision):
    gpu = dataclasses.replace(tiny, device="cuda", precision=precision)
    export_models(gpu, "tensorrt", precision, BATCHES, tmp_path, adm=tiny_adm_ckpt, student=student_ckpt)
    eager = _load(dataclasses.replace(gpu, precision="fp32"), tiny_adm_ckpt, student_ckpt)
    trt = _load(gpu, tiny_adm_ckpt, student_ckpt, backend="tensorrt", engines=tmp_path)
    meta = json.loads(metadata_path(artifact_path(tmp_path, "noise", precision, "tensorrt")).read_text())
    assert meta["tensorrt"]["gpu"] == torch.cuda.get_device_name()
    x = eager.preprocess(np.random.default_rng(3).integers(0, 256, (5, 72, 96, 3), dtype=np.uint8))
    assert _error(eager.noise(x), trt.noise(x)) <= TOLERANCE[precision]
    assert _error(eager.logits(x), trt.logits(x)) <= TOLERANCE[precision]


@needs_cuda
def test_compile_backend_with_inductor_and_cuda_graphs(tiny, tiny_adm_ckpt, student_ckpt):
    gpu = dataclasses.replace(tiny, device="cuda", precision="fp32")
    eager = _load(gpu, tiny_adm_ckpt, student_ckpt)
    compiled = _load(gpu, tiny_adm_ckpt, student_ckpt, backend="compile")
    assert compiled.backend.mode == "reduce-overhead" and compiled.backend.warmup_s > 0
    x = eager.preprocess(np.random.default_rng(3).integers(0, 256, (5, 72, 96, 3), dtype=np.uint8))
    assert _error(eager.logits(x), compiled.logits(x)) <= TOLERANCE["fp16"]  # TF32 convolutions on recent GPUs


def test_calibration_spans_the_dataset_and_skips_its_caches(tmp_path):
    from streamdet.export.quantize import calibration_files

    from .trainingdata import make_image_dataset

    dataset = make_image_dataset(tmp_path / "data", 6, {"gan": 6, "sd": 6}, size=16)
    (dataset / "cache" / "dire").mkdir(parents=True)
    (dataset / "cache" / "dire" / "a.png").write_bytes((dataset / "real").iterdir().__next__().read_bytes())
    files = calibration_files(dataset)
    assert len(files) == 18 and not any("/cache/" in f for f in files)
    first = {Path(f).relative_to(dataset).parts[-2] for f in files[:6]}
    assert len(first) >= 2, "a short prefix must already reach more than one sub-folder"
    assert files == calibration_files(dataset), "the order is fixed, so exports are reproducible"
