"""Where in the frame: heatmaps of what drove the student's score, for the frames asked for (each pays a backward pass).

`cam` is Grad-CAM (the `grad-cam` package) on the student's last convolutional stage (`layer4`): the weight of
each feature map is its mean gradient of the logit, the map their weighted sum, kept where positive, upsampled to
S×S and scaled to [0, 1]. At that stage the frame and its noise map `eps` are long mixed (the first convolution
reads all six channels), so the split between them comes from the same backward pass at the input: each input's
gradient × input summed over its three channels, the part that raises the logit, smoothed (Gaussian, σ = S/64):
`frame` and `eps`, scaled together so that they compare, and `eps_share`, eps's part of the total.

The maps cover the square the student saw; `streamdet.report.overlay.render` places them back on the frame by the crop box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from .crops import Box
from .errors import ConfigError

if TYPE_CHECKING:
    from .detector import Detector

MISSING = "--explain needs the grad-cam package (pip install 'streamdet[explain]')"


@dataclass(frozen=True)
class Explanation:
    """One frame's heatmaps (S×S float32 in [0, 1]), its score, the eps it was given (S×S×3) and the crop box the maps cover."""

    score: float
    cam: np.ndarray
    frame: np.ndarray
    eps: np.ndarray
    eps_share: float
    noise: np.ndarray
    box: Box | None = None

    def peak(self) -> tuple[int, int]:
        """(x, y) of the Grad-CAM maximum: in frame pixels where there is a box, else in the student's S×S input."""
        y, x = np.unravel_index(int(np.argmax(self.cam)), self.cam.shape)
        if self.box is None:
            return int(x), int(y)
        bx, by, bw, bh = self.box
        size = self.cam.shape[0]
        return int(bx + (x + 0.5) * bw / size), int(by + (y + 0.5) * bh / size)

    def to_dict(self) -> dict[str, Any]:
        """What the JSON carries (the maps themselves go to PNGs): score, eps share, box and peak."""
        return {"score": self.score, "eps_share": round(self.eps_share, 4), "box": list(self.box) if self.box else None, "peak": list(self.peak())}


class _SixChannels(nn.Module):
    """The student as one module of a 6-channel input (frame, eps), one logit column: the shape grad-cam calls."""

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.student = student

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.student(inputs[:, :3], inputs[:, 3:]).float().unsqueeze(1)


def torch_student(detector: "Detector") -> nn.Module:
    """The detector's DistilDIRE student as a PyTorch module (the compiled one's original), or a ConfigError saying why not."""
    if detector.method != "distildire":
        raise ConfigError(f"--explain reads the DistilDIRE student; the {detector.method} method has none")
    student = getattr(detector.backend, "student", None)
    if not isinstance(student, nn.Module):
        raise ConfigError(f"--explain needs the student as a PyTorch model: use --backend torch or compile, not {detector.backend.name}")
    return getattr(student, "_orig_mod", student)


def explain(detector: "Detector", x: torch.Tensor, boxes: Sequence[Box | None] | None = None, eps: torch.Tensor | None = None) -> list[Explanation]:
    """Heatmaps for preprocessed frames `x` (N×3×S×S): one forward and backward pass of the student per frame, in fp32.

    `eps` (default: computed by the detector) is the noise the student reads; `boxes` the crop box of each row.
    """
    try:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        raise ConfigError(MISSING) from None
    student = torch_student(detector)
    boxes = list(boxes) if boxes is not None else [None] * len(x)
    if len(boxes) != len(x):
        raise ValueError(f"{len(boxes)} boxes for {len(x)} frames")
    eps = detector.noise(x) if eps is None else eps
    device = next(student.parameters()).device
    out: list[Explanation] = []
    gradcam = GradCAM(model=_SixChannels(student), target_layers=[student.student_backbone.layer4])
    try:  # not `with`: its __exit__ swallows IndexErrors
        for start in range(0, len(x), detector.batch.size):
            chunk = slice(start, start + detector.batch.size)
            inputs = torch.cat([x[chunk], eps[chunk]], dim=1).to(device).float().requires_grad_(True)
            cams = gradcam(inputs, targets=[ClassifierOutputTarget(0)] * len(inputs))
            scores = torch.sigmoid(gradcam.outputs.detach()[:, 0]).cpu()
            attribution = (inputs.grad * inputs).detach()
            for i in range(len(inputs)):
                out.append(_explanation(float(scores[i]), cams[i], attribution[i], inputs[i, 3:].detach(), boxes[start + i]))
    finally:
        gradcam.activations_and_grads.release()
    return out


def _explanation(score: float, cam: np.ndarray, attribution: torch.Tensor, noise: torch.Tensor, box: Box | None) -> Explanation:
    """Split one frame's gradient × input into the frame's and eps's positive parts, smoothed and scaled together."""
    size = cam.shape[-1]
    frame, eps = (attribution[sl].sum(0).clamp(min=0).cpu().numpy() for sl in (slice(0, 3), slice(3, 6)))
    total = float(frame.sum() + eps.sum())
    share = float(eps.sum()) / total if total > 0 else 0.0
    frame, eps = (cv2.GaussianBlur(m.astype(np.float32), (0, 0), max(1.0, size / 64)) for m in (frame, eps))
    top = max(float(frame.max()), float(eps.max()), 1e-12)
    return Explanation(
        score=score,
        cam=np.clip(cam, 0.0, 1.0).astype(np.float32),
        frame=frame / top,
        eps=eps / top,
        eps_share=share,
        noise=noise.permute(1, 2, 0).cpu().numpy().astype(np.float32),
        box=box,
    )
