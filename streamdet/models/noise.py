"""The first-step noise map `eps` (DDIM at t = 0) that the student reads beside the frame."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from ..config import ADMConfig
from ..errors import ConfigError
from .adm import alpha_bar_0, load_adm, predict_eps, time_embedding


class FirstStepNoise(nn.Module):
    """eps = (a·x − clamp(a·x − b·ε̂)) / b, with ε̂ the UNet's prediction at t = 0 (docs/design.md §2).

    Equals guided-diffusion's `p_mean_variance(clip_denoised=True)` at t = 0 followed by
    `_predict_eps_from_xstart`. The t = 0 timestep embedding is computed once, here, so a forward
    does no host work (no sinusoid built on the CPU and copied per call): it is one graph that
    torch.compile traces whole and CUDA graphs capture. The UNet itself is shared, not changed, so
    the same weights also serve the other timesteps (DIRE). The arithmetic after the UNet runs in fp32.
    """

    def __init__(self, unet: nn.Module, cfg: ADMConfig) -> None:
        super().__init__()
        if getattr(unet, "num_classes", None) is not None:
            raise ConfigError("a class-conditional ADM is not supported: the noise map is defined for the unconditional model (class_cond: false)")
        self.unet = unet
        abar = alpha_bar_0(cfg)
        self.a = math.sqrt(1.0 / abar)
        self.b = math.sqrt(1.0 / abar - 1.0)
        self.register_buffer("embedding", time_embedding(unet, 0), persistent=False)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The UNet's eps prediction ε̂ at t = 0 (its first 3 output channels), as UNetModel.forward computes it."""
        return predict_eps(self.unet, x, self.embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        predicted = self.predict(x).float()
        x = x.float()
        ax = self.a * x
        x0 = (ax - self.b * predicted).clamp(-1.0, 1.0)
        return (ax - x0) / self.b


def load_noise_model(cfg: ADMConfig, path: str | Path) -> FirstStepNoise:
    """The noise model of an official-format ADM checkpoint: the one factory scan, watch, export and prepare use."""
    return FirstStepNoise(load_adm(cfg, path), cfg)
