"""The 6-channel ResNet-50 student (frame + eps → P(fake)) and the frozen ImageNet teacher."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet50_Weights, resnet50

from ..errors import WeightsError
from ..weights import load_checkpoint, load_into, offline, state_dict_of
from . import compressed

BODY_LAYERS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
FEATURES = 2048
TEACHER_WEIGHTS = ResNet50_Weights.IMAGENET1K_V2


def resnet50_body(in_channels: int = 3) -> nn.Sequential:
    """torchvision's ResNet-50 up to `layer4` (child names kept), its first conv taking `in_channels`."""
    net = resnet50(weights=None)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return nn.Sequential(OrderedDict((name, getattr(net, name)) for name in BODY_LAYERS))


class Student(nn.Module):
    """DistilDIRE's student: `student_backbone` (ResNet-50 body, 6 channels in) and `student_head` (pool → linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.student_backbone = resnet50_body(6)
        self.student_head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(FEATURES, 1))

    def forward_features(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N,) and the body's features (N×2048×S/32×S/32), the latter for distillation."""
        features = self.student_backbone(torch.cat([x, eps], dim=1))
        return self.student_head(features).squeeze(1), features

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Logits (N,); P(fake) is their sigmoid."""
        return self.forward_features(x, eps)[0]


def load_student(path: str | Path) -> Student:
    """A student from a DistilDIRE checkpoint (`{"model": state_dict, ...}`, optionally `module.`-prefixed).

    A `streamdet compress` checkpoint also holds a `compression` block: the architecture is rebuilt from it first.
    """
    checkpoint = load_checkpoint(path)
    state = state_dict_of(checkpoint, path)
    student = Student()
    meta = checkpoint.get(compressed.KEY) if isinstance(checkpoint, Mapping) else None
    what = "DistilDIRE student (6-channel ResNet-50)"
    if meta is not None:
        compressed.rebuild(student, meta, path)
        state = compressed.decode_state(student, state, meta, path)
        what = f"compressed student ({', '.join(step.get('method', '?') for step in meta.get('steps', []))})"
    load_into(student, state, path, what)
    return student.eval()


def _teacher_state(path: str | Path | None) -> tuple[dict[str, torch.Tensor], str]:
    """The teacher's ImageNet weights: from a torchvision resnet50 state_dict file, else torchvision's own download."""
    if path:
        return state_dict_of(load_checkpoint(path), path), str(path)
    url = TEACHER_WEIGHTS.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if not cached.is_file():
        if offline():
            raise WeightsError(f"teacher: {cached.name} is not cached and STREAMDET_OFFLINE is set; pass a torchvision resnet50 state_dict with --teacher, or put {url} at {cached}")
        try:
            TEACHER_WEIGHTS.get_state_dict(progress=True)
        except OSError as exc:  # URLError and socket errors are OSErrors
            raise WeightsError(f"teacher: cannot download {url} ({getattr(exc, 'reason', exc)}); pass a torchvision resnet50 state_dict with --teacher") from None
    return state_dict_of(load_checkpoint(cached), cached), str(cached)


def build_teacher(path: str | Path | None = None) -> nn.Module:
    """DistilDIRE's teacher: torchvision's ImageNet ResNet-50 without its classifier, frozen, in eval mode."""
    state, source = _teacher_state(path)
    body = resnet50_body(3)
    body_state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    load_into(body, body_state, source, "teacher (torchvision ResNet-50)")
    return body.eval().requires_grad_(False)
