"""The ADM-free lite detector: a small RGB-only network (QMDD backbone) that imitates the full pipeline's scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from torchvision.models import mobilenet_v3_small, resnet18, resnet34

from ..errors import WeightsError
from ..weights import load_checkpoint, load_into, state_dict_of
from . import compressed
from .student import FEATURES

FORMAT = "streamdet-lite/1"
BACKBONES = ("resnet18", "resnet34", "mobilenet_v3_small")


def _body(name: str) -> tuple[nn.Module, int]:
    """The backbone's convolutional body (stride 32, randomly initialised: nothing is downloaded) and its channels."""
    if name == "resnet18" or name == "resnet34":
        net = (resnet18 if name == "resnet18" else resnet34)(weights=None)
        return nn.Sequential(*list(net.children())[:-2]), 512
    if name == "mobilenet_v3_small":
        return mobilenet_v3_small(weights=None).features, 576
    raise WeightsError(f"{name}: unknown lite backbone (choose {', '.join(BACKBONES)})")


class LiteDetector(nn.Module):
    """RGB frame in [-1, 1] → logit; `adapter` maps its features onto the student's 2048 channels for distillation
    (training only: a detector built with `adapter=False`, as a quantized one is stored, has none)."""

    def __init__(self, backbone: str = "resnet18", adapter: bool = True) -> None:
        super().__init__()
        self.backbone_name = backbone
        self.body, channels = _body(backbone)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 1))
        self.adapter = nn.Conv2d(channels, FEATURES, kernel_size=1) if adapter else None

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N,) and the features mapped to the student's shape (N×2048×S/32×S/32)."""
        if self.adapter is None:
            raise WeightsError("this lite detector has no distillation adapter (a quantized one is for inference only); distill from the full-precision file")
        features = self.body(x)
        return self.head(features).squeeze(1), self.adapter(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N,); P(fake) is their sigmoid."""
        return self.head(self.body(x)).squeeze(1)


def lite_checkpoint(model: LiteDetector, meta: Mapping[str, Any], compression: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What `distill-lite` saves: `{"model": state_dict, "lite": metadata}` (tensors and plain values only); a quantized
    one (`compress quantize`) also has the `compression` block, and its quantized weights are stored as packed codes.
    A model without its adapter is saved with `"adapter": false` in the metadata."""
    extra = {} if model.adapter is not None else {"adapter": False}
    checkpoint = {"model": model.state_dict(), "lite": {"format": FORMAT, "backbone": model.backbone_name, **meta, **extra}}
    if compression is not None:
        checkpoint["model"] = compressed.encode_state(model, compression)
        checkpoint[compressed.KEY] = dict(compression)
    return checkpoint


def lite_meta(obj: Any) -> dict[str, Any] | None:
    """The `lite` block of a loaded checkpoint, None where it is not a lite detector's."""
    meta = obj.get("lite") if isinstance(obj, Mapping) else None
    return dict(meta) if isinstance(meta, Mapping) and meta.get("format") == FORMAT else None


def load_lite(path: str | Path) -> tuple[LiteDetector, dict[str, Any]]:
    """A lite detector and its metadata from a `distill-lite` checkpoint (read with weights_only=True); a quantized
    one is rebuilt from its `compression` block first (the block is in the metadata under that key)."""
    obj = load_checkpoint(path)
    meta = lite_meta(obj)
    if meta is None:
        raise WeightsError(f"{path}: not a lite detector checkpoint (no '{FORMAT}' block); make one with `streamdet distill-lite`")
    model = LiteDetector(str(meta.get("backbone")), adapter=meta.get("adapter", True) is not False)
    state = state_dict_of(obj, path)
    what = f"lite detector ({meta.get('backbone')})"
    block = obj.get(compressed.KEY)
    if block is not None:
        compressed.rebuild(model, block, path)
        state = compressed.decode_state(model, state, block, path)
        meta[compressed.KEY] = dict(block)
        what = f"quantized {what}"
    load_into(model, state, path, what)
    return model.eval(), meta
