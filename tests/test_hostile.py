"""Hostile and unlucky inputs (issue 22): each test builds the input, runs streamdet on it and checks the exit code,
the one-line message, and that nothing is lost or written outside its place."""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streamdet.cli import app

from .media import make_video, write_image
from .trainingdata import make_image_dataset

runner = CliRunner()


def _tiny(*extra: str, adm: Path, student: Path) -> list[str]:
    return ["--config", "tiny", "--adm", str(adm), "--student", str(student), "--quiet", *extra]


def _by_path(stdout: str) -> dict[str, dict]:
    return {r["path"]: r for r in json.loads(stdout)["inputs"]}


def _files(root: Path) -> set[str]:
    """Every file and folder under `root`, relative."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("clip") / "good.mp4", 20, (64, 48), 10)


# 1. named pipes ---------------------------------------------------------------------------------------------------


class PipeWatch:
    """Notices whether anyone opens a FIFO for reading, and if so unblocks them (opening the write end and closing
    it gives the reader end-of-file), so a regression fails the test instead of hanging it."""

    def __init__(self, fifo: Path) -> None:
        self.fifo = fifo
        self.readers = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.stop.is_set():
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)  # succeeds only while a reader has it open
            except OSError as exc:
                assert exc.errno == errno.ENXIO
            else:
                self.readers += 1
                os.close(fd)
            self.stop.wait(0.01)

    def __enter__(self) -> PipeWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join()


def test_named_pipe_in_a_folder_or_as_argument_is_one_line_error_and_never_opened(clip, tmp_path, tiny_adm_ckpt, fake_student_ckpt):
    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(clip, folder / "good.mp4")
    fifo = folder / "pipe.mp4"
    os.mkfifo(fifo)
    alone = tmp_path / "alone.jpg"
    os.mkfifo(alone)
    with PipeWatch(fifo) as in_folder, PipeWatch(alone) as as_argument:
        result = runner.invoke(app, ["scan", str(folder), str(alone), *_tiny("--json", adm=tiny_adm_ckpt, student=fake_student_ckpt)])
    assert in_folder.readers == 0 and as_argument.readers == 0, "a named pipe was opened"
    assert result.exit_code == 2, result.output
    rows = _by_path(result.stdout)
    assert rows[str(folder / "good.mp4")]["verdict"] == "FAKE"
    for path in (fifo, alone):
        error = rows[str(path)]["error"]
        assert rows[str(path)]["status"] == "error" and error == f"{path}: is a named pipe (FIFO), not a media file; not read"
    assert f"streamdet: {fifo}: is a named pipe (FIFO)" in result.stderr


def test_decoder_refuses_a_pipe_that_replaced_a_file(tmp_path):
    """A file swapped for a FIFO after the folder walk is refused when opened, not waited on."""
    from streamdet.errors import MediaError
    from streamdet.video import iter_frames

    fifo = tmp_path / "swapped.mp4"
    os.mkfifo(fifo)
    with PipeWatch(fifo) as watch, pytest.raises(MediaError, match="named pipe"):
        next(iter_frames(fifo))
    assert watch.readers == 0


# 2. manifest paths --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["../outside/x.png", "/tmp/streamdet-abs/x.png", "real/../../x.png"])
def test_manifest_path_outside_the_dataset_is_refused_before_anything_is_written(tmp_path, tiny_adm_ckpt, bad):
    root = make_image_dataset(tmp_path / "ds", 2, {"gen": 2}, size=32)
    (root / "manifest.jsonl").write_text(
        json.dumps({"path": "real/r000.png", "label": 0, "generator": "real"}) + "\n"
        + json.dumps({"path": bad, "label": 1, "generator": "gen"}) + "\n"
    )
    before = _files(tmp_path)
    result = runner.invoke(app, ["prepare", str(root), "--config", "tiny", "--adm", str(tiny_adm_ckpt), "--quiet"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"manifest.jsonl:2: path '{bad}' is not inside the dataset" in lines[0], result.stderr
    assert _files(tmp_path) == before, "nothing written, in the dataset or beside it"
    assert not Path("/tmp/streamdet-abs").exists()


def test_manifest_record_that_is_not_an_object_is_one_line(tmp_path):
    from streamdet.errors import DatasetError
    from streamdet.train import load_items

    root = make_image_dataset(tmp_path / "ds", 1, {"gen": 1}, size=32)
    (root / "manifest.jsonl").write_text('["real/r000.png"]\n')
    with pytest.raises(DatasetError, match=r"manifest.jsonl:1: not a manifest record"):
        load_items(root)


# 3. pixel limits ------------------------------------------------------------------------------------------------------


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims `width`×`height` (8-bit RGB) followed by a few bytes of compressed zeros: what a
    decompression bomb looks like to a header reader, without the gigabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(4096))) + chunk(b"IEND", b""))
    return path


def test_image_above_the_default_pixel_limit_is_refused_from_its_header_and_others_keep_their_results(clip, tmp_path, tiny_adm_ckpt, fake_student_ckpt):
    bomb = png_header_only(tmp_path / "bomb.png", 12000, 11000)
    huge = png_header_only(tmp_path / "huge.png", 30000, 30000)  # so large that Pillow will not even give its size
    assert bomb.stat().st_size < 1000
    good = write_image(tmp_path / "good.png", np.full((48, 64, 3), 90, np.uint8))
    args = [str(bomb), str(huge), str(good), str(clip)]
    result = runner.invoke(app, ["scan", *args, *_tiny("--json", adm=tiny_adm_ckpt, student=fake_student_ckpt)])
    assert result.exit_code == 2, result.output
    rows = _by_path(result.stdout)
    assert rows[str(bomb)]["error"] == f"{bomb}: 12000×11000 is 132 megapixels, above the limit of 100 (the max_pixels setting)"
    assert rows[str(huge)]["error"] == f"{huge}: more than 179 megapixels, above the limit of 100 (the max_pixels setting)"
    assert rows[str(good)]["verdict"] == "FAKE" and rows[str(clip)]["verdict"] == "FAKE"


def test_max_pixels_setting_applies_to_images_of_every_format_and_to_video(clip, tmp_path, tiny_adm_ckpt, fake_student_ckpt):
    config = tmp_path / "small.yaml"
    config.write_text(Path("configs/tiny.yaml").read_text() + "\nmax_pixels: 3000\n")
    big_jpeg = write_image(tmp_path / "big.jpg", np.full((48, 64, 3), 90, np.uint8))  # 3072 pixels
    small = write_image(tmp_path / "small.png", np.full((40, 60, 3), 90, np.uint8))  # 2400 pixels
    args = ["--config", str(config), "--adm", str(tiny_adm_ckpt), "--student", str(fake_student_ckpt), "--quiet", "--json"]
    result = runner.invoke(app, ["scan", str(big_jpeg), str(small), str(clip), *args])
    assert result.exit_code == 2, result.output
    rows = _by_path(result.stdout)
    assert "64×48 is 0 megapixels, above the limit of 0.003 (the max_pixels setting)" in rows[str(big_jpeg)]["error"]
    assert "64×48" in rows[str(clip)]["error"] and rows[str(clip)]["error"].startswith(str(clip))
    assert rows[str(small)]["verdict"] == "FAKE"


def test_large_pictures_are_made_float_one_channel_at_a_time_with_identical_values():
    """preprocess of a picture above the per-channel size equals the whole-picture float computation."""
    import torch
    import torch.nn.functional as F

    from streamdet.preprocess import preprocess

    image = np.random.default_rng(0).integers(0, 256, (2100, 2050, 3), dtype=np.uint8)  # 4.3 MP, above 2**22
    got = preprocess([image], 64)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    expected = F.interpolate(x, size=(65, 64), mode="bilinear", align_corners=False, antialias=True)  # short side 64
    expected = expected[..., :64, :] / 255 * 2 - 1  # the 1 extra row: the crop offset round(0.5) is 0
    assert got.shape == (1, 3, 64, 64) and torch.equal(got, expected)


# 7. downloads ---------------------------------------------------------------------------------------------------------


class Server:
    """A local HTTP server whose handler the test chooses; counts the requests it gets."""

    def __init__(self, handle) -> None:
        import http.server

        outer = self
        self.requests = 0
        self.release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.requests += 1
                handle(self, outer)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/w.pth"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


BODY = bytes(range(256)) * 512


def stall_half_way(handler, server: Server) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(BODY)))
    handler.end_headers()
    handler.wfile.write(BODY[: len(BODY) // 2])
    handler.wfile.flush()
    server.release.wait()  # then nothing more, until the test ends


def busy_once(handler, server: Server) -> None:
    if server.requests == 1:
        handler.send_response(503)
        handler.send_header("Retry-After", "0")
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(BODY)))
    handler.end_headers()
    handler.wfile.write(BODY)


def garbage(handler, server: Server) -> None:
    handler.wfile.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")


@pytest.fixture()
def serve(tmp_path, monkeypatch) -> Iterator:
    """Register a checkpoint served by a local server with the given handler (cache in tmp_path, short timeouts)."""
    import hashlib

    from streamdet.weights import REGISTRY, WeightFile

    monkeypatch.setenv("STREAMDET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STREAMDET_OFFLINE", raising=False)
    monkeypatch.setenv("STREAMDET_DOWNLOAD_TIMEOUT", "0.5")
    monkeypatch.setenv("STREAMDET_DOWNLOAD_RETRIES", "1")
    servers = []

    def start(handle) -> tuple[Server, WeightFile]:
        server = Server(handle)
        servers.append(server)
        weight = WeightFile("test-download", "student", server.url, 1, "served by the test", sha256=hashlib.sha256(BODY).hexdigest())
        monkeypatch.setitem(REGISTRY, weight.name, weight)
        return server, weight

    yield start
    for server in servers:
        server.close()


def test_stalled_download_times_out_after_its_retries_with_one_line_and_no_temp_file(serve, tmp_path):
    server, weight = serve(stall_half_way)
    result = runner.invoke(app, ["weights", "download", weight.name])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{server.url}: download failed: timed out (no data for 0.5 s) (2 attempts)" in lines[0], result.stderr
    assert server.requests == 2, "one retry after the first attempt"
    weights_dir = tmp_path / "home" / "weights"
    assert not weights_dir.exists() or list(weights_dir.iterdir()) == [], "no temporary or partial file is left"


def test_download_retries_a_busy_server_and_then_succeeds(serve):
    from streamdet.weights import resolve

    server, weight = serve(busy_once)
    path = resolve(weight.name)
    assert path.read_bytes() == BODY and server.requests == 2
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_server_that_does_not_speak_http_is_named_so_not_a_timeout(serve):
    from streamdet.errors import WeightsError
    from streamdet.weights import resolve

    server, weight = serve(garbage)
    with pytest.raises(WeightsError) as info:
        resolve(weight.name)
    assert "the server's reply is not HTTP (2 attempts)" in str(info.value) and "timed out" not in str(info.value)


# 8. YAML alias bombs and quotes ---------------------------------------------------------------------------------------


def test_yaml_alias_bomb_is_refused_in_one_short_line(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9) if i else 'lol'}]" for i in range(9)) + "\nthreshold: *a8\n")
    assert bomb.stat().st_size < 1024
    result = runner.invoke(app, ["scan", "missing.mp4", "--config", str(bomb), "--quiet"])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and len(line) < 300, line
    assert f"{bomb}: its aliases expand it to more than 100000 values (an alias bomb?); refused" in line


def test_small_alias_expansion_is_fine_but_the_error_quotes_a_bounded_value(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("x0: &a0 [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]\nx1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]\nthreshold: *a1\n")
    result = runner.invoke(app, ["scan", "missing.mp4", "--config", str(config), "--quiet"])
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert line.endswith(f"{config}: threshold: expected a number, got list [[0.1, 0.2, 0.3, 0.4, ...], [0.1, 0.2, 0.3, 0.4, ...], [0.1, 0.2, 0.3, 0.4, ...], [0.1, 0.2, 0.3, 0.4, ...], ...]"), line


def test_recursive_alias_is_refused(tmp_path):
    config = tmp_path / "loop.yaml"
    config.write_text("threshold: &a [*a]\n")
    result = runner.invoke(app, ["scan", "missing.mp4", "--config", str(config), "--quiet"])
    assert result.exit_code == 2 and f"{config}: an alias refers to a value that contains it (a recursive alias); refused" in result.stderr, result.output


def test_folder_given_as_config_is_named_a_folder(tmp_path):
    result = runner.invoke(app, ["scan", "missing.mp4", "--config", str(tmp_path), "--quiet"])
    assert result.exit_code == 2 and result.stderr.strip().endswith(f"{tmp_path}: is a folder, not a config file"), result.output


# 10. checkpoint CRCs --------------------------------------------------------------------------------------------------


def zero_bytes_inside(path: Path, entry_suffix: str, count: int = 64) -> str:
    """Zero `count` bytes in the middle of the stored data of the zip entry ending with `entry_suffix`; its name."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if i.filename.endswith(entry_suffix)), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    assert info.compress_type == zipfile.ZIP_STORED and any(data[start : start + count])
    data[start : start + count] = bytes(count)
    path.write_bytes(bytes(data))
    return info.filename


def test_checkpoint_with_zeroed_tensor_bytes_is_refused_by_its_crc(clip, tmp_path, tiny_adm_ckpt, fake_student_ckpt):
    damaged = tmp_path / "student.pth"
    shutil.copy(fake_student_ckpt, damaged)
    entry = zero_bytes_inside(damaged, "", 64)
    result = runner.invoke(app, ["scan", str(clip), *_tiny(adm=tiny_adm_ckpt, student=damaged)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        f"{damaged}: corrupt checkpoint: the bytes of {entry} do not match their CRC-32 (damaged on disk or in transfer); get the file again"
    ), result.stderr
    assert result.stdout == "", "no verdict from a damaged model"


def test_intact_checkpoint_is_crc_checked_once_and_remembered(tmp_path, fake_student_ckpt, monkeypatch):
    import zipfile

    from streamdet.weights import load_checkpoint

    monkeypatch.setenv("STREAMDET_HOME", str(tmp_path / "home"))
    copy = tmp_path / "student.pth"
    shutil.copy(fake_student_ckpt, copy)
    tested = []
    real = zipfile.ZipFile.testzip
    monkeypatch.setattr(zipfile.ZipFile, "testzip", lambda self: tested.append(1) or real(self))
    load_checkpoint(copy)
    load_checkpoint(copy)
    assert tested == [1]
    os.utime(copy, ns=(0, 0))  # a changed file is checked again
    load_checkpoint(copy)
    assert tested == [1, 1]


# 6. native threads ----------------------------------------------------------------------------------------------------


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through /proc/self/task (Linux)")
def test_threads_stay_bounded_over_many_files_even_without_garbage_collection(tmp_path, tiny_config, tiny_adm_ckpt, student_ckpt):
    """Each RGB conversion used to keep a swscale thread pool alive until its frame was collected (2 threads a file
    on 2 cores: 48 more here, against a bound of the pool and its decoders)."""
    import gc

    from streamdet.detector import Detector
    from streamdet.video import Sampling
    from streamdet.video.parallel import workers_available

    from .engines import configured, scan

    files = [make_video(tmp_path / f"v{i:02d}.mp4", 3, (48, 32), 10) for i in range(24)]
    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt, batch=8))
    workers, one = 2, Sampling(mode="uniform", frames=1)
    scan(detector, files[:2], sampling=one, decode_workers=workers)  # starts torch's own pools
    before = _threads()
    seen: list[int] = []
    gc.disable()
    try:
        results = scan(detector, files, sampling=one, decode_workers=workers, on_result=lambda r: seen.append(_threads()))
    finally:
        gc.enable()
    assert [r.status for r in results] == ["ok"] * 24 and len(seen) == 24
    bound = before + workers * (2 + max(1, workers_available() // workers))  # the pool, and each file's decoder threads
    assert max(seen) <= bound, (before, max(seen), bound)


# 4. and 11. outputs: folders, unwritable places, streams, symlinks, temporaries left by a kill ---------------------


def test_output_onto_a_folder_or_under_a_file_is_one_line_naming_it(tmp_path):
    from streamdet.errors import OutputError
    from streamdet.files import check_writable, write_text

    blocker = tmp_path / "file"
    blocker.write_text("x")
    for path, problem in [(tmp_path, f"{tmp_path}: is a folder; give a file name to write"), (blocker / "sub" / "out.json", f"{blocker / 'sub' / 'out.json'}: cannot write ({blocker} is not a folder)")]:
        for attempt in (check_writable, lambda p: write_text(p, "{}")):
            with pytest.raises(OutputError) as info:
                attempt(path)
            assert str(info.value) == problem
    assert _files(tmp_path) == {"file"} and blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder, so the refusal cannot be seen")
def test_output_into_a_read_only_folder_is_one_line(tmp_path):
    from streamdet.errors import OutputError
    from streamdet.files import check_writable, write_text

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        for attempt in (check_writable, lambda p: write_text(p, "{}")):
            with pytest.raises(OutputError, match=r"ro/out.json: cannot write \(permission denied\)"):
                attempt(folder / "out.json")
    finally:
        folder.chmod(0o755)
    assert list(folder.iterdir()) == []


def test_check_writable_leaves_nothing_and_accepts_folders_still_to_be_made(tmp_path):
    from streamdet.files import check_writable

    check_writable(tmp_path / "a" / "b" / "out.json")
    check_writable(tmp_path / "out.json")
    assert _files(tmp_path) == set()


def test_stream_targets_are_written_in_place_not_replaced(tmp_path):
    """A pipe reached through /proc/self/fd (what /dev/stdout is) and a FIFO stay what they are and get the bytes."""
    from streamdet.files import write_text

    read_end, write_end = os.pipe()
    try:
        link = Path(f"/proc/self/fd/{write_end}")
        write_text(link, "through the pipe\n", fsync=True)
        os.close(write_end)
        assert os.read(read_end, 100) == b"through the pipe\n"
    finally:
        os.close(read_end)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_text(fifo, "to the fifo\n")
    reader.join()
    assert got == [b"to the fifo\n"] and fifo.is_fifo() and _files(tmp_path) == {"out.fifo"}


def test_symlinked_output_is_followed_and_its_target_written_atomically(tmp_path):
    from streamdet.files import write_text

    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "report.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_text(link, "new", fsync=True)
    assert link.is_symlink() and os.readlink(link) == str(target) and target.read_text() == "new"
    assert _files(tmp_path) == {"real", "real/report.json", "link.json"}


def test_temporaries_of_a_killed_write_are_removed_by_the_next_durable_write(tmp_path):
    """A process killed inside an atomic write leaves `.out.json.<pid>.<random>.tmp`; once stale, the next write of
    out.json removes it (but never the temporary of a live process, or a fresh one)."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "out.json"
    code = (
        "import sys, time; from pathlib import Path; from streamdet.files import atomic_path\n"
        "with atomic_path(Path(sys.argv[1]), fsync=True) as tmp:\n"
        "    tmp.write_bytes(b'half'); print(tmp, flush=True); time.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    left = Path(child.stdout.readline().strip())
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert left.is_file() and left.name.startswith(f".out.json.{child.pid}.") and left.name.endswith(".tmp")
    live = tmp_path / f".out.json.{os.getpid()}.abcdefgh.tmp"
    live.write_bytes(b"a live writer's")
    old = 1_000_000_000
    for path in (left, live):
        os.utime(path, (old, old))
    from streamdet.files import write_text

    fresh_dead = tmp_path / f".out.json.{child.pid}.zzzzzzzz.tmp"
    fresh_dead.write_bytes(b"fresh")
    write_text(out, "{}", fsync=True)
    assert out.read_text() == "{}"
    assert not left.exists() and live.exists() and fresh_dead.exists()


def test_metrics_record_missing_after_a_kill_is_put_back_from_the_checkpoint(tmp_path):
    """`last.pth` is saved before its metrics line; a kill in between leaves the line out, and resuming restores it."""
    from streamdet.train.logbook import Logbook, read

    (tmp_path / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "train_loss": 0.5}) + "\n")
    Logbook(tmp_path, keep_through_epoch=2, last={"epoch": 2, "train_loss": 0.4}).close()
    assert [r["epoch"] for r in read(tmp_path)] == [1, 2]
    Logbook(tmp_path, keep_through_epoch=2, last={"epoch": 2, "train_loss": 0.4}).close()
    assert [r["epoch"] for r in read(tmp_path)] == [1, 2], "not added twice"


# 5. names that look like markup or carry control characters -----------------------------------------------------------


def test_names_with_markup_escapes_and_newlines_are_shown_escaped_on_one_line(tmp_path, monkeypatch, tiny_adm_ckpt, fake_student_ckpt):
    import cv2

    monkeypatch.chdir(tmp_path)
    png = cv2.imencode(".png", np.full((48, 64, 3), 90, np.uint8))[1].tobytes()
    (tmp_path / "[").mkdir()
    names = ["[/]a.png", "[bold red]b.png", "c\x1b[31m.png", "d\ne.png"]  # the first is file "]a.png" in folder "["
    for name in names:
        (tmp_path / name).write_bytes(png)
    (tmp_path / "x\nbroken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    result = runner.invoke(app, ["scan", *names, "x\nbroken.png", *_tiny(adm=tiny_adm_ckpt, student=fake_student_ckpt)])
    assert result.exit_code == 2, result.output
    assert "\x1b" not in result.stdout and "\x1b" not in result.stderr
    for shown in ["[/]a.png", "[bold red]b.png", "c\\x1b[31m.png", "d\\ne.png", "x\\nbroken.png"]:
        assert shown in result.stdout, (shown, result.stdout)
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("streamdet: x\\nbroken.png: "), result.stderr


# 9. the content decides image or video --------------------------------------------------------------------------------


def test_video_renamed_as_an_image_is_scanned_as_a_video(clip, tmp_path, tiny_adm_ckpt, fake_student_ckpt):
    disguised = tmp_path / "holiday.jpg"
    shutil.copy(clip, disguised)
    result = runner.invoke(app, ["scan", str(disguised), *_tiny("--json", adm=tiny_adm_ckpt, student=fake_student_ckpt)])
    assert result.exit_code == 1, result.output
    row = _by_path(result.stdout)[str(disguised)]
    assert row["kind"] == "video" and [f["index"] for f in row["frames"]] == [2, 7, 12, 17], "4 frames spread over 20, not the first"


# 12. and 13. other tools' noise, wording ----------------------------------------------------------------------------


@pytest.mark.slow
def test_damaged_image_gives_streamdets_line_only_not_opencvs(tmp_path, tiny_adm_ckpt, fake_student_ckpt):
    import subprocess
    import sys

    import cv2

    ok, encoded = cv2.imencode(".png", np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    cut = tmp_path / "cut.png"
    cut.write_bytes(encoded.tobytes()[: len(encoded) // 2])
    run = subprocess.run([sys.executable, "-m", "streamdet", "scan", str(cut), *_tiny(adm=tiny_adm_ckpt, student=fake_student_ckpt)], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"streamdet: {cut}: ") and "WARN" not in run.stderr, run.stderr


def test_zeroed_mp4_index_says_the_file_is_damaged_not_that_it_has_no_video(clip, tmp_path):
    from streamdet.errors import MediaError
    from streamdet.video import iter_frames

    data = bytearray(clip.read_bytes())
    at = data.find(b"moov")
    size = int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 : at - 4 + size] = bytes(size - 8)
    zeroed = tmp_path / "zeroed.mp4"
    zeroed.write_bytes(bytes(data))
    with pytest.raises(MediaError) as info:
        next(iter_frames(zeroed))
    assert str(info.value) == f"{zeroed}: damaged QuickTime / MOV file: its header describes no streams"
