"""Degradations of RGB frames as video platforms apply them: JPEG, downscale-upscale, blur, noise, H.264/HEVC re-encoding.

One implementation serves `eval --degrade` (fixed strengths, parsed from a SPEC such as `jpeg:95,75`,
`h264:23,28,35` or `scale:0.5+h264:28`) and the trainer's augmentations (strengths drawn from ranges).
Frames are H×W×3 uint8 RGB; a degradation takes a clip (a list of frames of one source) because
re-encoding encodes the frames together as a short video and decodes them again.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from typing import Callable, Sequence

import av
import cv2
import numpy as np

from ..errors import ConfigError, MediaError

Clip = list[np.ndarray]

# The clip rate of a re-encode: x264's rate control (CRF included) depends on it, so it is part of what a re-encode does.
REENCODE_FPS = 25
CODECS = {"h264": "libx264", "hevc": "libx265"}
# Options that make a re-encode repeatable, bit for bit: the libx264 in PyAV's wheels was seen to give a different
# bitstream from call to call on an AVX-512 machine (one thread did not help), and does here without assembly but with
# frame threads; one thread without assembly gives one. x265 gave the same bytes on every call here.
REPEATABLE = {"h264": {"threads": "1", "x264-params": "asm=0"}, "hevc": {"x265-params": "log-level=error"}}


@dataclass(frozen=True)
class Op:
    """One kind of degradation: what its value means and which values are allowed (inclusive bounds)."""

    meaning: str
    low: float
    high: float
    whole: bool = False
    low_open: bool = False

    def check(self, name: str, value: float) -> float:
        """`value` if allowed for this op, else a ConfigError naming the op and the range."""
        if self.whole and value != int(value):
            raise ConfigError(f"{name}: {self.meaning} must be a whole number, not {value:g}")
        too_low = value <= self.low if self.low_open else value < self.low
        if too_low or value > self.high:
            bound = "(" if self.low_open else "["
            raise ConfigError(f"{name}: {self.meaning} must be in {bound}{self.low:g}, {self.high:g}], not {value:g}")
        return int(value) if self.whole else float(value)


OPS = {
    "jpeg": Op("JPEG quality", 1, 100, whole=True),
    "scale": Op("downscale factor", 0, 1, low_open=True),
    "blur": Op("Gaussian blur sigma (pixels)", 0, 50),
    "noise": Op("Gaussian noise sigma (8-bit levels)", 0, 255),
    "h264": Op("H.264 CRF", 0, 51, whole=True),
    "hevc": Op("HEVC CRF", 0, 51, whole=True),
}


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """The image through a real JPEG encode and decode (OpenCV's libjpeg) at `quality`."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise MediaError("OpenCV could not encode a JPEG")
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def rescale(image: np.ndarray, factor: float) -> np.ndarray:
    """Downscaled by `factor` (area filter) and scaled back up to its size (bilinear): detail lost, geometry kept."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation `sigma` pixels (kernel from sigma); 0 leaves the image as it is."""
    return image.copy() if sigma == 0 else cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma))


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise of `sigma` 8-bit levels per pixel and channel, rounded and clipped to uint8."""
    noisy = image.astype(np.float32) + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def encode(clip: Sequence[np.ndarray], codec: str, crf: int) -> bytes:
    """The frames (one size) as a short Matroska yuv420p clip at `REENCODE_FPS` and constant rate factor `crf`, encoded
    in memory through PyAV, the same bytes on every call (`REPEATABLE`, and the muxer's bit-exact mode).

    Odd sizes are padded by repeating the last row/column (4:2:0 needs even sizes).
    """
    h, w = clip[0].shape[:2]
    if any(f.shape != clip[0].shape for f in clip):
        raise ValueError("reencode: all frames of a clip must have one size")
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(CODECS[codec], rate=REENCODE_FPS)
        stream.width, stream.height, stream.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
        stream.options = {"crf": str(crf), **REPEATABLE[codec]}
        for image in clip:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.pad(image, pad, mode="edge"), format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


def reencode(clip: Sequence[np.ndarray], codec: str, crf: int) -> Clip:
    """The frames (one size) through `encode` and decoded again, cropped back to their size."""
    h, w = clip[0].shape[:2]
    with av.open(io.BytesIO(encode(clip, codec, crf)), "r") as container:
        decoded = [frame.to_ndarray(format="rgb24")[:h, :w] for frame in container.decode(video=0)]
    if len(decoded) != len(clip):
        raise MediaError(f"{codec} re-encoding at CRF {crf} returned {len(decoded)} of {len(clip)} frames")
    return decoded


def _per_frame(fn: Callable[[np.ndarray, float], np.ndarray]) -> Callable[[Clip, float, np.random.Generator], Clip]:
    return lambda clip, value, rng: [fn(image, value) for image in clip]


def _same_size_runs(clip: Clip, value: float, codec: str) -> Clip:
    """Re-encode each run of consecutive frames of one size as its own clip (a dataset may mix sizes)."""
    out: Clip = []
    for _, run in itertools.groupby(clip, key=lambda f: f.shape):
        out += reencode(list(run), codec, int(value))
    return out


APPLY: dict[str, Callable[[Clip, float, np.random.Generator], Clip]] = {
    "jpeg": _per_frame(jpeg),
    "scale": _per_frame(rescale),
    "blur": _per_frame(blur),
    "noise": lambda clip, value, rng: [add_noise(image, value, rng) for image in clip],
    "h264": lambda clip, value, rng: _same_size_runs(clip, value, "h264"),
    "hevc": lambda clip, value, rng: _same_size_runs(clip, value, "hevc"),
}


@dataclass(frozen=True)
class Step:
    """One op at one strength, e.g. `h264:35`."""

    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.op}:{self.value:g}"


@dataclass(frozen=True)
class Degradation:
    """Steps applied in order; no steps is the clean frame."""

    steps: tuple[Step, ...] = ()

    @property
    def name(self) -> str:
        """`clean`, or the steps as a SPEC, e.g. `scale:0.5+h264:28`."""
        return "+".join(map(str, self.steps)) or "clean"

    @property
    def kind(self) -> str:
        """The ops without strengths, e.g. `scale+h264` (one curve of the plot)."""
        return "+".join(s.op for s in self.steps) or "clean"

    @property
    def strength(self) -> str:
        """The strengths without the ops, e.g. `0.5+28` (a point on that curve)."""
        return "+".join(f"{s.value:g}" for s in self.steps)

    def apply(self, clip: Sequence[np.ndarray], rng: np.random.Generator) -> Clip:
        """The degraded clip (same length and sizes); `rng` draws the noise."""
        out = list(clip)
        for step in self.steps:
            out = APPLY[step.op](out, step.value, rng)
        return out


def parse(spec: str) -> list[Degradation]:
    """`OP:V[,V…][+OP:V[,V…]]` → one Degradation per combination of values, e.g. `jpeg:95,75` → jpeg:95 and jpeg:75."""
    parts = []
    for part in spec.split("+"):
        op, sep, values = part.strip().partition(":")
        if op not in OPS:
            raise ConfigError(f"--degrade {spec!r}: unknown degradation {op!r} (known: {', '.join(OPS)})")
        if not sep or not values.strip():
            raise ConfigError(f"--degrade {spec!r}: {op} needs strengths after a colon, e.g. {op}:{OPS[op].high:g}")
        steps = []
        for text in values.split(","):
            try:
                value = float(text)
            except ValueError:
                raise ConfigError(f"--degrade {spec!r}: {text.strip()!r} is not a number") from None
            steps.append(Step(op, OPS[op].check(f"--degrade {spec!r}", value)))
        parts.append(steps)
    return [Degradation(tuple(combo)) for combo in itertools.product(*parts)]
