"""Random models saved in the official checkpoint formats (docs/design.md §3), for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.models import resnet50

from streamdet.config import ADMConfig
from streamdet.models.adm import build_adm
from streamdet.models.student import Student


def random_adm(cfg: ADMConfig, seed: int = 0) -> torch.nn.Module:
    """A UNet with every parameter random (guided-diffusion zero-initialises some, which would hide errors)."""
    torch.manual_seed(seed)
    model = build_adm(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def save_adm(path: Path, cfg: ADMConfig, seed: int = 0) -> Path:
    """Save a random UNet as the official ADM file is saved: a plain state_dict."""
    torch.save(random_adm(cfg, seed).state_dict(), path)
    return path


def random_bn_statistics(module: torch.nn.Module) -> None:
    """Give every BatchNorm non-trivial running statistics, so eval-mode outputs depend on them."""
    for name, buf in module.named_buffers():
        if name.endswith("running_mean"):
            buf.normal_(0, 0.1)
        elif name.endswith("running_var"):
            buf.uniform_(0.5, 1.5)


def random_student(seed: int = 0, bias: float | None = None) -> Student:
    """A random student; with `bias`, its head ignores the input and always gives logit `bias`."""
    torch.manual_seed(seed)
    student = Student()
    with torch.no_grad():
        random_bn_statistics(student)
        head = student.student_head[2]
        if bias is not None:
            head.weight.zero_()
            head.bias.fill_(bias)
        else:
            # Random ResNet features share a large common part: scale the head so logits on
            # random frames spread around 0 instead of saturating the sigmoid.
            probe = torch.rand(8, 3, 64, 64) * 2 - 1
            logits = student.eval()(probe, torch.randn_like(probe))
            head.weight.div_(logits.std())
            head.bias.sub_(logits.mean()).div_(logits.std())
    return student.eval()


def spread_head(head: torch.nn.Linear, logits: torch.Tensor, std: float = 1.5) -> None:
    """Rescale a random model's last layer, whose outputs on some inputs were `logits`, so that on those inputs they
    have mean 0 and standard deviation `std`: random heads saturate the sigmoid on real frames (P exactly 0 or 1),
    which hides any numerical drift between two ways of computing the same scores."""
    logits = logits.detach().float().flatten()
    with torch.no_grad():
        scale = std / float(logits.std())
        head.weight.mul_(scale)
        head.bias.sub_(float(logits.mean())).mul_(scale)


def save_student(path: Path, student: Student, ddp_prefix: bool = True) -> Path:
    """Save as DistilDIRE does: `{"model": state_dict, "optimizer": ..., "epoch": ...}`, keys `module.`-prefixed."""
    prefix = "module." if ddp_prefix else ""
    state = {prefix + k: v for k, v in student.state_dict().items()}
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": []}, "epoch": 11}, path)
    return path


def random_dire_classifier(seed: int = 0, bias: float | None = None) -> torch.nn.Module:
    """A torchvision ResNet-50 with one output, as the DIRE reference builds its classifier, with random BN statistics;
    with `bias`, it ignores its input and always gives logit `bias`."""
    torch.manual_seed(seed)
    net = resnet50(weights=None, num_classes=1)
    with torch.no_grad():
        random_bn_statistics(net)
        if bias is not None:
            net.fc.weight.zero_()
            net.fc.bias.fill_(bias)
    return net.eval()


def save_dire_classifier(path: Path, net: torch.nn.Module, wrapped: bool = True) -> Path:
    """Save as the DIRE reference's trainer does (`{"model": state_dict, "optimizer": ..., "total_steps": ...}`), or bare."""
    state = net.state_dict()
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": []}, "total_steps": 1000} if wrapped else state, path)
    return path


def fit_head(student: Student, x: torch.Tensor, eps: torch.Tensor, labels: torch.Tensor, steps: int = 200, decay: float = 1e-2) -> Student:
    """Fit the student's linear head by logistic regression (L2 `decay`) on its pooled features of (x, eps): a cheap student that separates the classes."""
    with torch.no_grad():
        pooled = student.student_head[:2](student.student_backbone(torch.cat([x, eps], 1)))
    mean, std = pooled.mean(0), pooled.std(0) + 1e-6
    probe = torch.nn.Linear(pooled.shape[1], 1)
    optimiser = torch.optim.Adam(probe.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(probe((pooled - mean) / std).squeeze(1), labels.float()) + decay * probe.weight.square().sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    head = student.student_head[2]
    with torch.no_grad():  # the probe on standardised features = the head on the raw ones
        head.weight.copy_(probe.weight / std)
        head.bias.copy_(probe.bias - (probe.weight / std * mean).sum())
    return student
