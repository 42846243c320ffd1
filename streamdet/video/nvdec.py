"""NVIDIA hardware decoding (NVDEC) through torchcodec: the sampled frames decoded straight into GPU memory.

Frame identity follows the CPU decoder exactly: targets come from the same packet index and sampling plan
(``fileplan.plan_file``), are fetched by presentation-order index, and every frame torchcodec returns is checked
against its target's timestamp, so an exact frame is never swapped for a neighbour. Not yet run on a GPU.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import torch

from streamdet.errors import BackendError, MediaError
from streamdet.video.animation import decoded_by_pillow
from streamdet.video.fileplan import plan_file
from streamdet.video.orient import display_matrix, transposes
from streamdet.video.frame import Frame
from streamdet.video.sampling import Sampling
from streamdet.video.sources import is_url, media_kind
from streamdet.video.stats import DecodeStats
from streamdet.video.videofile import VideoFile

DECODERS = ("cpu", "nvdec", "auto")

# FFmpeg codec names NVDEC decodes on current NVIDIA GPUs (older GPUs lack some; torchcodec then reports it).
NVDEC_CODECS = {"h264", "hevc", "av1", "vp8", "vp9", "mpeg1video", "mpeg2video", "mpeg4", "vc1", "mjpeg"}

# Targets fetched per torchcodec call: bounds the GPU memory a file's decoder holds at once.
FRAMES_PER_CALL = 16

# A returned frame matches its target when their timestamps agree to this many seconds.
PTS_TOLERANCE = 1e-4


def nvdec_problem(device: torch.device) -> str | None:
    """Why NVDEC cannot decode for a detector on ``device`` here, or None when it can."""
    if device.type != "cuda":
        return f"the detector runs on {device.type}, and NVDEC decodes into NVIDIA GPU memory"
    if not torch.cuda.is_available():
        return "CUDA is not available on this machine"
    try:
        importlib.import_module("torchcodec.decoders")
    except ImportError:
        return "the torchcodec package is not installed (pip install 'streamdet[nvdec]')"
    except (OSError, RuntimeError) as exc:
        return f"torchcodec cannot load ({str(exc).splitlines()[0]})"
    return None


def resolve_decoder(name: str, device: torch.device) -> str:
    """``cpu`` or ``nvdec`` for ``--decoder name``: ``auto`` picks NVDEC where it works; ``nvdec`` fails if not."""
    if name not in DECODERS:
        raise BackendError(f"--decoder {name}: unknown decoder (choose {', '.join(DECODERS)})")
    if name == "cpu":
        return "cpu"
    problem = nvdec_problem(device)
    if problem is None:
        return "nvdec"
    if name == "auto":
        return "cpu"
    raise BackendError(f"--decoder nvdec: {problem}; --decoder cpu works here")


def file_problem(codec: str, matrix: tuple[int, ...] | None) -> str | None:
    """Why NVDEC cannot decode a video of this codec and display matrix with upright exact frames, or None."""
    if codec not in NVDEC_CODECS:
        return f"NVDEC does not decode {codec} video"
    if matrix is not None and matrix[0] * matrix[4] - matrix[1] * matrix[3] < 0:
        return "its display matrix mirrors the picture, which torchcodec does not apply"
    return None


def iter_frames_nvdec(
    path: str | Path, sampling: Sampling, device: torch.device, stats: DecodeStats | None = None, strict: bool = True
) -> Iterator[Frame] | None:
    """The sampled frames of a video file as upright RGB ``3×H×W`` uint8 tensors on ``device``, decoded by NVDEC.

    Where NVDEC cannot decode the input, raises ``MediaError`` (``strict``) or returns None, so that the caller
    uses the CPU decoder (``--decoder auto``).
    """
    path = str(path)
    stats = stats if stats is not None else DecodeStats()
    plan = decoder = None
    if is_url(path) or media_kind(path) == "image" or decoded_by_pillow(path):
        problem = "NVDEC decodes video files only (streams and images use the CPU decoder)"
    else:
        with VideoFile(path) as video:
            first = next(video.decode(), None)
            if first is None:
                raise video.nothing_decoded()
            matrix = display_matrix(first)
            problem = file_problem(video.stream.codec_context.name, matrix)
            size = (first.width, first.height) if transposes(matrix) else (first.height, first.width)
            if problem is None:
                plan = plan_file(video.rewound(), sampling, stats)
                reason = video.untrusted or "missing or repeated packet timestamps"
                problem = None if plan is not None else f"its timestamps cannot place exact frames ({reason})"
            time_base = float(video.stream.time_base)
    if problem is None:
        decoder = _open(path, device)
        if getattr(decoder, "cpu_fallback", False):
            problem = f"NVDEC cannot decode it ({decoder.cpu_fallback})"
    if problem is not None:
        if strict:
            raise MediaError(f"{path}: {problem}; use --decoder cpu or auto")
        return None
    if not plan.chosen:
        raise MediaError(f"{path}: video stream has no frames")
    return _decoded(path, decoder, plan.chosen, time_base, size, device, stats)


def _open(path: str, device: torch.device):
    """A torchcodec decoder on ``device`` with exact (scanned) frame indices."""
    from torchcodec.decoders import VideoDecoder

    try:
        return VideoDecoder(path, device=str(device), seek_mode="exact", dimension_order="NCHW")
    except (RuntimeError, ValueError) as exc:
        raise MediaError(f"{path}: NVDEC cannot open it ({str(exc).splitlines()[0]}); use --decoder cpu") from None


def _decoded(
    path: str, decoder, chosen: list, time_base: float, size: tuple[int, int], device: torch.device, stats: DecodeStats
) -> Iterator[Frame]:
    """Fetch the targets in calls of ``FRAMES_PER_CALL``, checking each frame's timestamp and upright size."""
    for start in range(0, len(chosen), FRAMES_PER_CALL):
        part = chosen[start : start + FRAMES_PER_CALL]
        try:
            batch = decoder.get_frames_at([index for index, _, _ in part])
        except (RuntimeError, IndexError, ValueError) as exc:
            raise MediaError(f"{path}: NVDEC failed ({str(exc).splitlines()[0]}); use --decoder cpu") from None
        # the copies out of NVDEC are queued on this thread's stream: let them finish before other streams read
        done = torch.cuda.Event()
        done.record(torch.cuda.current_stream(device))
        done.synchronize()
        for (index, time, packet), image, pts in zip(part, batch.data, batch.pts_seconds.tolist()):
            if abs(pts - packet.pts * time_base) > PTS_TOLERANCE:
                raise MediaError(
                    f"{path}: NVDEC returned the frame at {pts:.6f} s for frame {index} at "
                    f"{packet.pts * time_base:.6f} s; use --decoder cpu"
                )
            if tuple(image.shape[1:]) != size:
                raise MediaError(f"{path}: NVDEC returned {tuple(image.shape[1:])} frames, not upright {size}; use --decoder cpu")
            stats.decoded += 1
            stats.sampled += 1
            yield Frame(source=path, index=index, time=time, image=image)
