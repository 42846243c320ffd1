"""The first-step noise map `eps` (DDIM at t = 0) that the student reads beside the frame."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ADMConfig
from .adm import alpha_bar_0, timestep_embedding


class _ConstantEmbedding(nn.Module):
    """Stands in for the UNet's `time_embed`: the t = 0 embedding, computed once, for any batch."""

    def __init__(self, embedding: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("embedding", embedding, persistent=False)

    def forward(self, sinusoid: torch.Tensor) -> torch.Tensor:
        return self.embedding.expand(sinusoid.shape[0], -1)


def freeze_timestep(unet: nn.Module) -> nn.Module:
    """Replace the UNet's timestep MLP by its output at t = 0 (the only step streamdet runs)."""
    with torch.no_grad():
        t0 = torch.zeros(1, device=next(unet.parameters()).device)
        embedding = unet.time_embed(timestep_embedding(t0, unet.model_channels)).detach()
    unet.time_embed = _ConstantEmbedding(embedding)
    return unet


class FirstStepNoise(nn.Module):
    """eps = (a·x − clamp(a·x − b·ε̂)) / b, with ε̂ the UNet's prediction at t = 0 (DESIGN.md §2).

    Equals guided-diffusion's `p_mean_variance(clip_denoised=True)` at t = 0 followed by
    `_predict_eps_from_xstart`. The arithmetic after the UNet always runs in fp32.
    """

    def __init__(self, unet: nn.Module, cfg: ADMConfig) -> None:
        super().__init__()
        self.unet = unet
        abar = alpha_bar_0(cfg)
        self.a = math.sqrt(1.0 / abar)
        self.b = math.sqrt(1.0 / abar - 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        predicted = self.unet(x, t)[:, :3].float()
        x = x.float()
        ax = self.a * x
        x0 = (ax - self.b * predicted).clamp(-1.0, 1.0)
        return (ax - x0) / self.b
