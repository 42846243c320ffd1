"""`streamdet batch` on a real local Ray instance: same verdicts as the local scan, resumable output, parseable rows."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamdet.cli import app
from streamdet.cluster import gather_sources, read_rows, run_batch
from streamdet.errors import StreamdetError
from streamdet.detector import Detector
from streamdet.results import FileResult
from streamdet.video import Sampling

from .engines import configured, scan

from .media import corrupt_packets, make_video
from .servers import trickle

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ray = pytest.importorskip("ray", reason="the cluster tests need Ray: pip install -e '.[ray]'")
pytest.importorskip("ray.data", reason="the cluster tests need Ray Data: pip install -e '.[ray]'")

runner = CliRunner()


def every_third(config) -> Sampling:
    """The sampling `--every 3` gives with this config."""
    return Sampling(**dataclasses.asdict(dataclasses.replace(config.sampling, mode="every", every=3)))
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance (2 CPUs, no dashboard) for the whole module: start-up takes seconds."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """Clips of different lengths, one with corrupt packets (a warning) and one that is not a video (an error)."""
    root = tmp_path_factory.mktemp("archive")
    make_video(root / "a.mp4", 20)
    make_video(root / "b.mp4", 12, size=(48, 64))
    (root / "sub").mkdir()
    corrupt_packets(make_video(root / "sub" / "c.mp4", 20, gop=1), [6, 13])
    (root / "sub" / "broken.mp4").write_bytes(b"\x00not a video\x00" * 64)
    return root


@pytest.fixture(scope="module")
def batch_run(local_ray, archive, tiny_adm_ckpt, student_ckpt, tmp_path_factory):
    """`streamdet batch` through the CLI on the module's Ray instance; the output folder and the CLI result."""
    out = tmp_path_factory.mktemp("cluster-out")
    result = runner.invoke(
        app, ["batch", str(archive), "--out-dir", str(out), "--cluster", "auto", "--config", "tiny",
              "--adm", str(tiny_adm_ckpt), "--student", str(student_ckpt), "--every", "3", "--part-rows", "2"],
    )
    return out, result


def test_cluster_verdicts_match_the_local_scan(batch_run, archive, tiny_config, tiny_adm_ckpt, student_ckpt):
    out, result = batch_run
    assert result.exit_code == 2, result.output  # the broken file is an error, so exit 2 as scan
    assert "4 inputs" in result.stdout and "1 errors" in result.stdout
    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt))
    local = {r.path: r for r in scan(detector, [archive], sampling=every_third(tiny_config))}
    rows = read_rows(out)
    assert set(rows) == set(local) and len(local) == 4
    for path, expected in local.items():
        row = rows[path]
        assert (row["status"], row["verdict"], row["flagged"], row["warning"], row["error"]) == (
            expected.status, expected.verdict, expected.flagged, expected.warning, expected.error
        ), path
        assert [(f["index"], f["time"]) for f in row["frames"]] == [(f.index, f.time) for f in expected.frames]
        assert [f["score"] for f in row["frames"]] == pytest.approx([f.score for f in expected.frames], rel=1e-4, abs=1e-9)
        assert [(s["kind"], s["start"], s["end"], s["frames"]) for s in row["segments"]] == [(s.kind, s.start, s.end, s.frames) for s in expected.segments], path
        assert row["provenance"] == (expected.provenance.to_dict() if expected.provenance else None), path
    broken = rows[str(archive / "sub" / "broken.mp4")]
    assert broken["status"] == "error" and "broken.mp4" in broken["error"]
    assert "could not be decoded" in rows[str(archive / "sub" / "c.mp4")]["warning"]


def test_rows_parse_with_the_fields_of_scan_json(batch_run, archive):
    out, _ = batch_run
    parts = sorted(out.glob("part-*.jsonl"))
    per_part = [len(part.read_text().splitlines()) for part in parts]
    assert max(per_part) <= 2 and sum(per_part) == 4  # at most --part-rows 2 a part (a slow run also writes every 30 s)
    lines = [json.loads(line) for part in parts for line in part.read_text().splitlines()]
    scan_fields = set(FileResult("x", "video").to_dict())
    for row in lines:
        assert set(row) == scan_fields | {"size", "mtime_ns"}
        stat = os.stat(row["path"])
        assert (row["size"], row["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns)
        FileResult(**{k: v for k, v in row.items() if k not in ("size", "mtime_ns")})
    assert not list(out.glob(".*.tmp")), "no temporary file is left behind"


def test_rerun_skips_done_inputs_and_redoes_changed_ones_and_errors(batch_run, archive, tiny_config, tiny_adm_ckpt, student_ckpt, tmp_path):
    """On copies of the module's archive and output (the other tests keep theirs as the CLI run left them)."""
    done, _ = batch_run
    mine, out = tmp_path / "archive", tmp_path / "out"
    shutil.copytree(archive, mine)  # copy2: the copies keep the originals' size and mtime, the rows' resume key
    out.mkdir()
    for part in done.iterdir():
        text = part.read_text().replace(str(archive), str(mine)) if part.suffix == ".jsonl" else part.read_text()
        (out / part.name).write_text(text)
    changed, broken = mine / "b.mp4", mine / "sub" / "broken.mp4"
    before = {p.name: p.read_bytes() for p in out.glob("part-*.jsonl")}
    make_video(changed, 16, size=(48, 64))
    run = configured(tiny_config, tiny_adm_ckpt, student_ckpt, sampling=every_third(tiny_config))
    summary = run_batch(run, [str(mine)], out, retry_errors=True)
    assert (summary.skipped, summary.scanned) == (2, 2)
    assert sorted(r.path for r in summary.results) == sorted([str(changed), str(broken)])
    assert {p.name: p.read_bytes() for p in out.glob("part-*.jsonl") if p.name in before} == before
    rows = read_rows(out)
    assert rows[str(changed)]["size"] == changed.stat().st_size and len(rows[str(changed)]["frames"]) == 6  # frames 0, 3, ..., 15
    assert rows[str(broken)]["status"] == "error"


def test_other_settings_on_the_same_folder_are_refused(batch_run, archive, tiny_adm_ckpt, student_ckpt):
    out, _ = batch_run
    result = runner.invoke(
        app, ["batch", str(archive), "--out-dir", str(out), "--config", "tiny", "--adm", str(tiny_adm_ckpt),
              "--student", str(student_ckpt), "--every", "3", "--threshold", "0.2"],
    )
    assert result.exit_code == 2
    assert "threshold" in result.stderr and "use a new --out-dir" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_killed_run_resumes_without_rescanning_finished_files(local_ray, tmp_path, tiny_adm_ckpt, fake_student_ckpt):
    """Clips finish while a sixth, served over HTTP a byte at a time, cannot: the run is killed once a row is written
    (so at least one input and never the sixth is done), and the rerun scans only what is left (served whole now)."""
    media = tmp_path / "media"
    media.mkdir()
    for i in range(5):
        make_video(media / f"v{i}.mp4", 16)
    with trickle(make_video(tmp_path / "slow.ts", 16)) as slow:
        url = slow.url
        listing = tmp_path / "inputs.txt"
        listing.write_text("# the clips\n" + "".join(f"{p}\n" for p in sorted(media.glob("*.mp4"))) + url + "\n")
        out = tmp_path / "out"
        command = [sys.executable, "-m", "streamdet", "batch", "--list", str(listing), "--out-dir", str(out), "--cluster", local_ray,
                   "--config", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(fake_student_ckpt), "--every", "4", "--part-rows", "1", "--cpus-per-actor", "0", "-q"]  # both CPUs decode
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        job = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 300
            while not (read_rows(out) if out.is_dir() else {}) and job.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            job.send_signal(signal.SIGKILL)
        finally:
            job.wait()
        assert job.returncode == -signal.SIGKILL, job.stderr.read().decode()
        first = {p.name: p.read_bytes() for p in out.glob("part-*.jsonl")}
        done = set(read_rows(out))
        assert done and done <= {str(p) for p in media.glob("*.mp4")}, "killed with some clips done, the slow one not"

        slow.release()
        result = runner.invoke(app, ["batch", "--list", str(listing), "--out-dir", str(out), "--cluster", local_ray, "--config", "tiny",
                                     "--adm", str(tiny_adm_ckpt), "--student", str(fake_student_ckpt), "--every", "4"])
    assert result.exit_code == 1, result.output  # every clip FAKE with this student (a stream has no duration: --every)
    assert f"scanned {6 - len(done)} " in result.stdout and f"skipped {len(done)} already done" in result.stdout
    assert {p.name: p.read_bytes() for p in out.glob("part-*.jsonl") if p.name in first} == first
    paths = [json.loads(line)["path"] for p in out.glob("part-*.jsonl") for line in p.read_text().splitlines()]
    assert sorted(paths) == sorted([*(str(p) for p in media.glob("*.mp4")), url]), "each clip has exactly one row"
    assert all(row["verdict"] == "FAKE" and len(row["frames"]) == 4 for row in read_rows(out).values())


BLOCK_RAY = """
import sys
class NoRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray' (blocked by the test)")
sys.meta_path.insert(0, NoRay())
from streamdet.cli import app
app(sys.argv[1:], prog_name="streamdet")
"""


def test_without_ray_the_cluster_scan_says_what_to_install(tmp_path, tiny_adm_ckpt, student_ckpt):
    clip = make_video(tmp_path / "a.mp4", 4)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_RAY, "batch", str(clip), "--out-dir", str(tmp_path / "out"), "--config", "tiny"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["streamdet: error: streamdet batch needs Ray: pip install 'streamdet[ray]' (or pip install 'ray[data]>=2.9')"]
    assert not (tmp_path / "out").exists()


def test_sources_from_globs_and_list_files(tmp_path):
    for name in ("b.mp4", "a.mp4", "c.png"):
        (tmp_path / name).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# comment\n\n{tmp_path / 'c.png'}\nrtsp://camera/1\n")
    got = gather_sources([str(tmp_path / "*.mp4"), str(tmp_path / "none-*.mp4")], [listing])
    assert got == [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), str(tmp_path / "none-*.mp4"), str(tmp_path / "c.png"), "rtsp://camera/1"]
    with pytest.raises(StreamdetError, match="missing.txt: cannot read the list file"):
        gather_sources([], [tmp_path / "missing.txt"])


def test_a_damaged_part_file_is_a_one_line_error_naming_it(tmp_path):
    (tmp_path / "part-1-000000.jsonl").write_text('{"path": "a.mp4", "status": "ok"}\n{"path": "b.mp4", "sta')
    with pytest.raises(StreamdetError, match=r"part-1-000000.jsonl:2: not a result row"):
        read_rows(tmp_path)


@pytest.mark.slow
def test_one_cpu_still_makes_progress(tmp_path, tiny_adm_ckpt, student_ckpt):
    """A new local Ray with one CPU: the detector actor leaves it to the decode tasks instead of stalling them."""
    clip = make_video(tmp_path / "a.mp4", 8)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-m", "streamdet", "batch", str(clip), "--out-dir", str(tmp_path / "out"), "--cluster", "local", "--num-cpus", "1",
         "--config", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(student_ckpt), "-q"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode in (0, 1), done.stderr
    assert list(read_rows(tmp_path / "out")) == [str(clip)]


@pytest.mark.parametrize("case", ["file", "unreachable", "no-inputs"])
def test_batch_refuses_bad_places_in_one_line_before_ray_starts(case, tmp_path, tiny_adm_ckpt, student_ckpt):
    clip = make_video(tmp_path / "a.mp4", 4)
    out, cluster, sources = tmp_path / "out", "auto", [str(clip)]
    if case == "file":
        out.write_text("not a folder")
    elif case == "unreachable":
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        cluster = f"127.0.0.1:{listener.getsockname()[1]}"
        listener.close()  # nothing listens there now
    else:
        sources = []
    result = runner.invoke(app, ["batch", *sources, "--out-dir", str(out), "--cluster", cluster, "--config", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(student_ckpt), "-q"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("streamdet: error: ")
    expected = {"file": f"{out}: is not a folder", "unreachable": f"--cluster {cluster}: no Ray head answers there", "no-inputs": "no inputs"}[case]
    assert expected in lines[0]
