"""Heatmap images a person can look at: an `Explanation`'s maps placed back on the frame it came from, as PNGs.

`frame` is the frame with the square the student saw outlined; `cam` the Grad-CAM heatmap over that square of the
frame (the rest dimmed); `frame_attribution` the frame channels' share likewise; `eps` the noise map the student read
(mid-gray is 0, full colour ±3); `eps_attribution` the eps channels' share over it. The frame images are in frame
pixels, the eps images in the student's S×S.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..crops import Box, center_box
from ..explain import Explanation
from ..files import atomic_path

KINDS = ("frame", "cam", "frame_attribution", "eps", "eps_attribution")
EPS_RANGE = 3.0  # eps is about unit normal: ±3 covers nearly all of it
BOX_COLOR = (255, 64, 64)


def render(image: np.ndarray, explanation: Explanation, max_side: int | None = None) -> dict[str, bytes]:
    """PNGs of each of KINDS for one explained frame (uint8 RGB H×W×3); `max_side` shrinks the frame images to fit."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    height, width = image.shape[:2]
    box = explanation.box or center_box(height, width)
    scale = min(1.0, max_side / max(height, width)) if max_side else 1.0
    small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA) if scale < 1 else image
    x, y, w, h = (round(v * scale) for v in box)
    w, h = max(1, min(w, small.shape[1] - x)), max(1, min(h, small.shape[0] - y))

    def over_frame(heat: np.ndarray) -> np.ndarray:
        out = (small * 0.45).astype(np.uint8)
        region = small[y : y + h, x : x + w].astype(np.float32) / 255
        out[y : y + h, x : x + w] = show_cam_on_image(region, cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR), use_rgb=True)
        return _outlined(out, (x, y, w, h))

    noise = np.clip(128 + 127 * explanation.noise / EPS_RANGE, 0, 255).astype(np.uint8)
    images = {
        "frame": _outlined(small.copy(), (x, y, w, h)),
        "cam": over_frame(explanation.cam),
        "frame_attribution": over_frame(explanation.frame),
        "eps": noise,
        "eps_attribution": show_cam_on_image(noise.astype(np.float32) / 255, explanation.eps, use_rgb=True),
    }
    return {kind: _png(images[kind]) for kind in KINDS}


def write(folder: str | Path, stem: str, pngs: dict[str, bytes]) -> list[Path]:
    """Write each PNG as `folder/stem.kind.png` (atomically); the paths written, in KINDS order."""
    paths = []
    for kind, data in pngs.items():
        path = Path(folder) / f"{stem}.{kind}.png"
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        paths.append(path)
    return paths


def _outlined(image: np.ndarray, box: Box) -> np.ndarray:
    x, y, w, h = box
    thickness = max(1, round(max(image.shape[:2]) / 300))
    return cv2.rectangle(np.ascontiguousarray(image), (x, y), (x + w - 1, y + h - 1), BOX_COLOR, thickness)


def _png(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("OpenCV could not encode a PNG")
    return data.tobytes()
