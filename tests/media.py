"""Make small test videos and images whose pixels say which frame they are, so tests can check decoding."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

Pattern = Callable[[int, int, int], np.ndarray]

INDEX_BITS = 10
GRAY = 128
FACE_CENTER = (230, 90)  # where `drawn_face` puts the face in a 320×180 frame by default


def index_bars(index: int, width: int, height: int) -> np.ndarray:
    """Full-height black/white bars, most significant bit first, encoding ``index`` (survives lossy codecs)."""
    edges = np.linspace(0, width, INDEX_BITS + 1).round().astype(int)
    image = np.zeros((height, width, 3), np.uint8)
    for bit in range(INDEX_BITS):
        if index >> (INDEX_BITS - 1 - bit) & 1:
            image[:, edges[bit] : edges[bit + 1]] = 255
    return image


def read_index(image: np.ndarray) -> int:
    """Recover the index drawn by ``index_bars`` from a decoded RGB image of the same orientation."""
    width = image.shape[1]
    edges = np.linspace(0, width, INDEX_BITS + 1)
    row = image[image.shape[0] // 2].mean(axis=1)
    value = 0
    for bit in range(INDEX_BITS):
        value = value << 1 | int(row[int((edges[bit] + edges[bit + 1]) / 2)] > GRAY)
    return value


def orientation_marks(index: int, width: int, height: int) -> np.ndarray:
    """Black image with a white block at the top-left and a gray block at the top-right, to detect rotations."""
    image = np.zeros((height, width, 3), np.uint8)
    block_h, block_w = height // 3, width // 3
    image[:block_h, :block_w] = 255
    image[:block_h, width - block_w :] = GRAY
    return image


def corner_levels(image: np.ndarray) -> dict[str, str]:
    """Classify each corner of an image as ``white``, ``gray`` or ``black`` (keys ``tl``, ``tr``, ``bl``, ``br``)."""
    h, w = image.shape[:2]
    top, bottom, left, right = h // 8, h - 1 - h // 8, w // 8, w - 1 - w // 8
    spots = {"tl": (top, left), "tr": (top, right), "bl": (bottom, left), "br": (bottom, right)}
    levels = {}
    for name, (y, x) in spots.items():
        value = float(image[y, x].mean())
        levels[name] = "white" if value > 200 else "gray" if value > 60 else "black"
    return levels


def make_video(
    path: str | Path,
    n_frames: int = 30,
    size: tuple[int, int] = (64, 48),
    fps: int = 10,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pattern: Pattern = index_bars,
    *,
    times: Sequence[float] | None = None,
    gop: int | None = None,
    rotation: int | None = None,
    hflip: bool = False,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    colorspace: int | None = None,
    color_range: int | None = None,
) -> Path:
    """Encode ``n_frames`` frames of ``pattern(index, width, height)`` (``size`` is width, height) with PyAV.

    ``times`` gives explicit presentation times in seconds (variable frame rate); ``gop`` a fixed key-frame
    interval; ``rotation``/``hflip`` a display matrix; ``options``/``container_options`` go to the encoder and
    the muxer. The container follows the file extension. ``colorspace``/``color_range`` (FFmpeg's AVColorSpace
    and AVColorRange numbers) convert the RGB pattern with that matrix and range and tag the stream with them.
    """
    path = Path(path)
    width, height = size
    time_base = Fraction(1, 1000) if times is not None else Fraction(1, fps)
    with av.open(str(path), mode="w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps, options=_codec_options(codec, gop, times, options))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.time_base = time_base
        if times is not None:
            stream.time_base = time_base
        if gop is not None:
            stream.codec_context.gop_size = gop
        if rotation is not None or hflip:
            stream.set_display_rotation(rotation or 0, hflip=hflip)
        tags = {"colorspace": colorspace, "color_range": color_range}
        for name, value in tags.items():
            if value is not None:
                setattr(stream.codec_context, name, value)
        for index in range(n_frames):
            frame = av.VideoFrame.from_ndarray(pattern(index, width, height), format="rgb24")
            if colorspace is not None or color_range is not None:
                frame = frame.reformat(format=pix_fmt, dst_colorspace=colorspace, dst_color_range=color_range)
            frame.pts = round(times[index] / time_base) if times is not None else index
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _codec_options(
    codec: str, gop: int | None, times: Sequence[float] | None, extra: dict[str, str] | None
) -> dict[str, str]:
    """Encoder options: near-lossless x264, no extra key frames at scene cuts, no B-frames for VFR."""
    options: dict[str, str] = {}
    if codec == "libx264":
        options["crf"] = "12"
        params = []
        if gop is not None:
            params.append("scenecut=0")
        if times is not None:
            params.append("bframes=0")
        if params:
            options["x264-params"] = ":".join(params)
    options.update(extra or {})
    return options


def make_audio(path: str | Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """Write an audio-only file (AAC, silence) to check that it is rejected as having no video."""
    path = Path(path)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=rate)
        samples = 1024
        for start in range(0, int(seconds * rate), samples):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, samples), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB/RGBA (or gray, uint8/uint16) array with OpenCV, converting to its BGR channel order."""
    path = Path(path)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"OpenCV could not write {path}")
    return path


def write_animation(path: str | Path, delays_ms: Sequence[int], size: tuple[int, int] = (80, 40)) -> Path:
    """An animated GIF or WebP (by extension, with Pillow) whose frame i shows ``index_bars(i)`` for ``delays_ms[i]``."""
    path = Path(path)
    frames = [Image.fromarray(index_bars(index, *size)) for index in range(len(delays_ms))]
    extra = {"lossless": True} if path.suffix.lower() == ".webp" else {}
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=list(delays_ms), loop=0, **extra)
    return path


def write_jpeg_with_orientation(path: str | Path, image: np.ndarray, orientation: int) -> Path:
    """Write an RGB image as JPEG with an EXIF Orientation tag (1-8) inserted right after the SOI marker."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise OSError("OpenCV could not encode a JPEG")
    entry = struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) + entry + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    data = encoded.tobytes()
    path = Path(path)
    path.write_bytes(data[:2] + app1 + data[2:])
    return path


def corrupt_packets(path: str | Path, packet_numbers: Sequence[int], seed: int = 0, keep: float = 0.0) -> Path:
    """Overwrite the payload of the given video packets (0-based, in file order) with seeded random bytes.

    Meant for MP4, whose packets are bare payloads; use all-intra video (``gop=1``) so that later frames
    still decode. ``keep`` leaves that fraction of each payload intact at its start (the slice headers), so the
    decoder takes the packet and meets the damage inside the picture, as in a file overwritten mid-stream.
    """
    path = Path(path)
    with av.open(str(path)) as container:
        spans = [(packet.pos, packet.size) for packet in container.demux(video=0) if packet.size]
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    for number in packet_numbers:
        position, size = spans[number]
        start = position + int(size * keep)
        data[start : position + size] = rng.bytes(position + size - start)
    path.write_bytes(bytes(data))
    return path


def drawn_face(width: int = 320, height: int = 180, cx: int = FACE_CENTER[0], cy: int = FACE_CENTER[1], size: int = 60) -> np.ndarray:
    """A plain drawn face (skin oval, brows, eyes, nose, mouth) that OpenCV's frontal-face cascade finds."""
    image = np.full((height, width, 3), 90, np.uint8)
    cv2.ellipse(image, (cx, cy), (int(size * 0.8), size), 0, 0, 360, (225, 190, 160), -1)
    for side in (-0.35, 0.35):
        ex, ey = int(cx + side * size), int(cy - 0.2 * size)
        cv2.ellipse(image, (ex, ey - int(0.18 * size)), (int(0.22 * size), int(0.05 * size)), 0, 0, 360, (60, 40, 30), -1)
        cv2.ellipse(image, (ex, ey), (int(0.16 * size), int(0.08 * size)), 0, 0, 360, (40, 30, 30), -1)
    cv2.line(image, (cx, cy - int(0.1 * size)), (cx, cy + int(0.2 * size)), (170, 130, 110), 3)
    cv2.ellipse(image, (cx, cy + int(0.45 * size)), (int(0.28 * size), int(0.07 * size)), 0, 0, 360, (120, 50, 50), -1)
    return cv2.GaussianBlur(image, (5, 5), 0)
