"""`streamdet scan` end to end: generated videos and images, checkpoints in the official formats."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streamdet.cli import app
from streamdet.detector import Detector
from .engines import configured, scan
from streamdet.video import Sampling

from .media import corrupt_packets, make_audio, make_video, read_index, write_image

runner = CliRunner()


def noise_pattern(index: int, width: int, height: int) -> np.ndarray:
    """Random texture that differs per frame, so a random student gives each frame its own score."""
    return np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("media")
    make_video(root / "a.mp4", 30, (96, 64), 10)
    (root / "nested" / "deeper").mkdir(parents=True)
    make_video(root / "nested" / "b.mkv", 12, (64, 80), 6, pattern=noise_pattern)
    make_video(root / "nested" / "deeper" / "c.webm", 8, (70, 50), 8, codec="libvpx-vp9", pattern=noise_pattern)
    write_image(root / "d.png", noise_pattern(99, 90, 60))
    write_image(root / "nested" / "e.jpg", noise_pattern(98, 40, 64))
    (root / "notes.txt").write_text("not media, skipped by the folder walk")
    return root


def _tiny(*extra: str, adm: Path, student: Path) -> list[str]:
    return ["--config", "tiny", "--adm", str(adm), "--student", str(student), "--quiet", *extra]


def test_folder_scan_with_fake_student_flags_every_file(media, tiny_adm_ckpt, fake_student_ckpt, tmp_path):
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["scan", str(media), *_tiny("--out", str(out), adm=tiny_adm_ckpt, student=fake_student_ckpt)])
    assert result.exit_code == 1, result.output
    doc = json.loads(out.read_text())
    paths = [Path(r["path"]).name for r in doc["inputs"]]
    assert sorted(paths) == ["a.mp4", "b.mkv", "c.webm", "d.png", "e.jpg"]
    for r in doc["inputs"]:
        assert r["status"] == "ok" and r["error"] is None
        assert r["verdict"] == "FAKE" and r["score"] > 0.99 and r["flagged"] == len(r["frames"])
        times = [f["time"] for f in r["frames"]]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert set(r["timings"]) == {"decode_s", "model_s", "total_s"}
    assert doc["summary"] == {"inputs": 5, "fake": 5, "real": 0, "errors": 0}
    by_name = {Path(r["path"]).name: r for r in doc["inputs"]}
    assert len(by_name["a.mp4"]["frames"]) == 4  # the tiny config samples 4 frames spread over the video
    assert len(by_name["d.png"]["frames"]) == 1


def test_real_student_exits_zero_with_a_table(media, tiny_adm_ckpt, real_student_ckpt):
    result = runner.invoke(app, ["scan", str(media / "a.mp4"), str(media / "d.png"), *_tiny(adm=tiny_adm_ckpt, student=real_student_ckpt)])
    assert result.exit_code == 0, result.output
    assert "a.mp4" in result.output and "REAL" in result.output and "FAKE" not in result.output


def _bad_inputs(root: Path, good_mp4: Path) -> dict[str, tuple[Path, str]]:
    root.mkdir()
    (root / "empty.mp4").write_bytes(b"")
    (root / "random.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    data = good_mp4.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])
    make_audio(root / "audio.m4a")
    (root / "no_media").mkdir()
    (root / "no_media" / "readme.txt").write_text("nothing to scan")
    return {
        "missing": (root / "missing.mp4", "no such file"),
        "empty": (root / "empty.mp4", "empty"),
        "random": (root / "random.mp4", "not a media file"),
        "truncated": (root / "truncated.mp4", "truncated or corrupt"),
        "audio": (root / "audio.m4a", "no video stream"),
        "no_media": (root / "no_media", "no image or video files"),
    }


def test_bad_inputs_are_one_line_errors_and_do_not_stop_the_others(media, tiny_adm_ckpt, fake_student_ckpt, tmp_path):
    bad = _bad_inputs(tmp_path / "bad", media / "a.mp4")
    args = [str(p) for p, _ in bad.values()] + [str(media / "d.png")]
    result = runner.invoke(app, ["scan", *args, *_tiny("--json", adm=tiny_adm_ckpt, student=fake_student_ckpt)])
    assert result.exit_code == 2, result.output
    doc = json.loads(result.stdout)
    by_path = {r["path"]: r for r in doc["inputs"]}
    for name, (path, problem) in bad.items():
        r = by_path[str(path)]
        assert r["status"] == "error" and r["verdict"] is None, name
        assert r["error"].startswith(str(path)) and problem in r["error"] and "\n" not in r["error"], (name, r["error"])
    assert by_path[str(media / "d.png")]["verdict"] == "FAKE"
    assert [r["path"] for r in doc["inputs"]] == args, "results come in input order"


@pytest.mark.slow
def test_unreadable_checkpoint_is_one_line_and_exit_2(media, tmp_path, fake_student_ckpt):
    broken = tmp_path / "adm.pt"
    broken.write_text("<html>404 not found</html>")
    result = subprocess.run(
        [sys.executable, "-m", "streamdet", "scan", str(media / "d.png"), *_tiny(adm=broken, student=fake_student_ckpt)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(broken) in lines[0] and "not a PyTorch checkpoint" in lines[0], result.stderr


@pytest.mark.slow
def test_per_frame_rows_as_jsonl_and_csv(media, tiny_adm_ckpt, student_ckpt, tmp_path):
    video = str(media / "a.mp4")
    jsonl = runner.invoke(app, ["scan", video, *_tiny("--every", "5", "--jsonl", adm=tiny_adm_ckpt, student=student_ckpt)])
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r["index"] for r in rows] == [0, 5, 10, 15, 20, 25]
    assert [r["time"] for r in rows] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    out = tmp_path / "frames.csv"
    runner.invoke(app, ["scan", video, *_tiny("--every", "5", "--out", str(out), adm=tiny_adm_ckpt, student=student_ckpt)])
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [int(r["index"]) for r in table] == [0, 5, 10, 15, 20, 25]
    # two runs of the scan: how frames fall into batches depends on decoder timing, and batched CPU convolutions
    # differ in the last bits, so the same frame's score agrees to 1e-3 as across batch sizes (see below), not exactly
    assert [float(r["score"]) for r in table] == pytest.approx([r["score"] for r in rows], rel=1e-3)


@pytest.mark.parametrize(
    ("option", "expected"),
    [(["--all-frames"], list(range(30))), (["--fps", "2"], list(range(0, 30, 5))), (["--frames", "3"], [5, 15, 25])],
)
@pytest.mark.slow
def test_sampling_options_pick_the_frames(media, tiny_adm_ckpt, student_ckpt, option, expected):
    result = runner.invoke(app, ["scan", str(media / "a.mp4"), *_tiny(*option, "--jsonl", adm=tiny_adm_ckpt, student=student_ckpt)])
    assert [json.loads(line)["index"] for line in result.stdout.splitlines()] == expected


def test_snap_keyframes_option_picks_key_frames(tiny_adm_ckpt, student_ckpt, tmp_path):
    """Key frames every 10 of 60 frames at 10 fps; targets 0.75, 2.25, 3.75, 5.25 s snap to 1, 2, 4 and 5 s."""
    video = make_video(tmp_path / "gop.mp4", 60, (64, 48), 10, gop=10)
    result = runner.invoke(app, ["scan", str(video), *_tiny("--frames", "4", "--snap", "keyframes", "--jsonl", adm=tiny_adm_ckpt, student=student_ckpt)])
    assert [json.loads(line)["index"] for line in result.stdout.splitlines()] == [10, 20, 40, 50]
    refused = runner.invoke(app, ["scan", str(video), *_tiny("--every", "2", "--snap", "keyframes", adm=tiny_adm_ckpt, student=student_ckpt)])
    assert refused.exit_code == 2 and "--snap: applies to uniform sampling only, not 'every'" in refused.output


def test_conflicting_options_are_refused(media, tiny_adm_ckpt, student_ckpt):
    result = runner.invoke(app, ["scan", str(media / "a.mp4"), *_tiny("--every", "2", "--keyframes", adm=tiny_adm_ckpt, student=student_ckpt)])
    assert result.exit_code == 2 and "choose one frame sampling option" in result.output


@pytest.mark.slow
def test_scores_follow_frames_not_positions_across_batches(media, tiny_config, tiny_adm_ckpt, student_ckpt):
    """Frames of several files share batches; each score must land on its own (file, index)."""
    paths = [media / "nested" / "b.mkv", media / "nested" / "deeper" / "c.webm", media / "nested" / "e.jpg"]
    every = Sampling(mode="all")
    batched = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt, batch=7))
    sizes: list[int] = []
    together = scan(batched, paths, sampling=every, on_frames=sizes.append)
    one = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt, batch=1))
    alone = [scan(one, [p], sampling=every)[0] for p in paths]
    assert max(sizes) == 7 and sum(sizes) == 12 + 8 + 1
    for a, b in zip(together, alone):
        assert [(f.index, f.time) for f in a.frames] == [(f.index, f.time) for f in b.frames]
        assert [f.score for f in a.frames] == pytest.approx([f.score for f in b.frames], rel=1e-3)
    spread = np.std(np.log([f.score for f in together[0].frames]))
    assert spread > 0.1, "scores must differ between frames for this test to mean anything"


def test_decoded_frames_are_the_sampled_ones(media):
    from streamdet.video import iter_frames

    frames = list(iter_frames(media / "a.mp4", Sampling(mode="every", every=7)))
    assert [read_index(f.image) for f in frames] == [f.index for f in frames] == [0, 7, 14, 21, 28]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_device_without_a_gpu_is_a_clear_error(media, tiny_adm_ckpt, student_ckpt):
    result = runner.invoke(app, ["scan", str(media / "d.png"), *_tiny("--device", "cuda", adm=tiny_adm_ckpt, student=student_ckpt)])
    assert result.exit_code == 2 and "cuda: CUDA is not available on this machine" in result.output


def test_weights_commands_list_and_locate_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMDET_HOME", str(tmp_path))
    listed = runner.invoke(app, ["weights", "list"])
    assert listed.exit_code == 0 and "adm-256-uncond" in listed.output and "distildire-celebahq" in listed.output
    located = runner.invoke(app, ["weights", "path", "distildire-imagenet"])
    assert located.exit_code == 1 and located.output.strip() == str(tmp_path / "weights" / "imagenet-distil-dire-11e.pth")
    monkeypatch.setenv("STREAMDET_OFFLINE", "1")
    offline = runner.invoke(app, ["weights", "download", "adm-256-uncond"])
    assert offline.exit_code == 2 and "STREAMDET_OFFLINE is set" in offline.output and "256x256_diffusion_uncond.pt" in offline.output


@pytest.mark.parametrize("to_file", [True, False], ids=["out", "stdout"])
@pytest.mark.slow
def test_ctrl_c_keeps_finished_results_and_marks_the_rest_interrupted(tmp_path, tiny_adm_ckpt, fake_student_ckpt, to_file):
    """SIGINT once the first input is finished: exit 130, the report is written whole, unfinished inputs say so."""
    first = make_video(tmp_path / "a_short.mp4", 4, (64, 48), 10)
    rest = [make_video(tmp_path / f"{name}_long.mp4", 240, (64, 48), 10, pattern=noise_pattern) for name in "bc"]
    out = tmp_path / "report.json"
    args = [str(first), *map(str, rest), *_tiny("--all-frames", "--decode-workers", "1", "--batch", "4", "--json", *(["--out", str(out)] if to_file else []), adm=tiny_adm_ckpt, student=fake_student_ckpt)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "streamdet", "--verbose", "scan", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    for line in process.stderr:  # the progress signal: --verbose logs each input as it finishes
        seen.append(line)
        if f"finished {first}" in line:
            break
    assert f"finished {first}" in seen[-1], "".join(seen)
    assert not out.exists(), "nothing is written before the scan ends"
    process.send_signal(signal.SIGINT)
    stdout, rest_of_stderr = process.communicate(timeout=120)
    stderr = "".join(seen) + rest_of_stderr
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted:" in stderr
    doc = json.loads(out.read_text() if to_file else stdout)
    by_path = {r["path"]: r for r in doc["inputs"]}
    assert list(by_path) == [str(first), *map(str, rest)], "every input is reported, in input order"
    done = by_path[str(first)]
    assert (done["status"], done["verdict"], len(done["frames"])) == ("ok", "FAKE", 4)
    stopped = [r for r in doc["inputs"] if r["status"] == "error"]
    assert stopped, "240-frame inputs cannot have finished in the time one 4-frame input took"
    for r in stopped:
        assert r["error"] == f"{r['path']}: interrupted (Ctrl-C before this input was finished)" and r["verdict"] is None and r["frames"] == []
    assert doc["summary"]["errors"] == len(stopped) and doc["summary"]["inputs"] == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no temporary file left behind"


def _strict_json(text: str) -> dict:
    """Parse JSON that must be standard: NaN and Infinity are refused."""
    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _reference_times(path: Path) -> list[float]:
    """Presentation times of every frame plain PyAV can decode from ``path``."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        times = []
        for packet in container.demux(stream):
            try:
                times += [float((f.pts - start) * stream.time_base) for f in packet.decode()]
            except av.FFmpegError:
                continue
        return sorted(times)


@pytest.mark.slow
def test_file_cut_short_is_a_warning_in_json_and_table(tiny_adm_ckpt, fake_student_ckpt, tmp_path):
    """A Matroska file cut in half keeps its header duration (6 s): the scan says where decoding stopped."""
    whole = make_video(tmp_path / "whole.mkv", 60, (64, 48), 10, pattern=noise_pattern, gop=10)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    shown = _reference_times(cut)
    assert 5 < len(shown) < 50, "the cut must leave part of the file"
    result = runner.invoke(app, ["scan", str(cut), *_tiny("--json", adm=tiny_adm_ckpt, student=fake_student_ckpt)])
    assert result.exit_code == 1, result.output
    (r,) = _strict_json(result.stdout)["inputs"]
    assert r["status"] == "ok" and r["verdict"] == "FAKE", "a partial decode still gives a verdict, with a warning"
    assert f"decoding stopped at t={shown[-1] + 0.1:.1f} s of 6.0 s" in r["warning"], r["warning"]
    assert max(f["time"] for f in r["frames"]) == pytest.approx(shown[-1])
    table = runner.invoke(app, ["scan", str(cut), *_tiny(adm=tiny_adm_ckpt, student=fake_student_ckpt)])
    note = " ".join(line.split("│")[-2].strip() for line in table.output.splitlines() if line.count("│") == 8)  # 7 columns
    assert f"decoding stopped at t={shown[-1] + 0.1:.1f} s of 6.0 s" in note, table.output


@pytest.mark.slow
def test_corrupt_packets_are_counted_in_the_warning(tiny_adm_ckpt, student_ckpt, tmp_path):
    path = corrupt_packets(make_video(tmp_path / "intra.mp4", 20, (64, 48), 10, gop=1), [6, 13])
    decodable = len(_reference_times(path))
    assert decodable < 20, "the corruption must make the decoder drop frames"
    result = runner.invoke(app, ["scan", str(path), *_tiny("--all-frames", "--json", adm=tiny_adm_ckpt, student=student_ckpt)])
    (r,) = _strict_json(result.stdout)["inputs"]
    assert r["status"] == "ok" and len(r["frames"]) == decodable
    assert r["warning"] == f"2 corrupt packet(s) skipped; {20 - decodable} sampled frame(s) could not be decoded"


@pytest.fixture(scope="module")
def nan_student_ckpt(tmp_path_factory) -> Path:
    """A student whose head has one NaN weight, so every frame score is NaN."""
    import torch

    from .checkpoints import random_student, save_student

    student = random_student(seed=4)
    with torch.no_grad():
        student.student_head[2].weight[0, 0] = float("nan")
    return save_student(tmp_path_factory.mktemp("nan") / "student_nan.pth", student)


@pytest.mark.slow
def test_non_finite_scores_are_an_error_not_a_verdict(media, tiny_adm_ckpt, nan_student_ckpt):
    video = media / "a.mp4"
    result = runner.invoke(app, ["scan", str(video), *_tiny("--frames", "3", "--json", adm=tiny_adm_ckpt, student=nan_student_ckpt)])
    assert result.exit_code == 2, result.output
    (r,) = _strict_json(result.stdout)["inputs"]
    assert r["status"] == "error" and r["verdict"] is None and r["score"] is None
    assert r["error"].startswith(str(video)) and "3 of 3 frame scores are not finite" in r["error"] and "\n" not in r["error"]
    assert [f["index"] for f in r["frames"]] == [5, 15, 25] and all(f["score"] is None for f in r["frames"])
    rows = runner.invoke(app, ["scan", str(video), *_tiny("--frames", "3", "--jsonl", adm=tiny_adm_ckpt, student=nan_student_ckpt)])
    assert rows.exit_code == 2
    parsed = [json.loads(line, parse_constant=lambda name: pytest.fail(f"non-standard JSON {name}")) for line in rows.stdout.splitlines()]
    assert [(p["index"], p["score"], p["status"]) for p in parsed] == [(5, None, "error"), (15, None, "error"), (25, None, "error")]
