"""DIRE images (DESIGN.md §2): |x − DDIM-reconstruct(DDIM-invert(x))|, quantized to 8 bits, with guided-diffusion's own DDIM."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ADMConfig
from ..models.adm import build_diffusion


class DIRE:
    """Inverts frames to noise and reconstructs them with DDIM over `steps` respaced steps (clipping, eta 0)."""

    def __init__(self, unet: nn.Module, cfg: ADMConfig, steps: int = 20) -> None:
        self.unet = unet
        self.diffusion = build_diffusion(cfg, f"ddim{steps}")

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        """The DDIM latent of `x`: `ddim_reverse_sample` applied step by step from t = 0 to the last step."""
        latent = x
        for step in range(self.diffusion.num_timesteps):
            t = torch.full((len(x),), step, dtype=torch.long, device=x.device)
            latent = self.diffusion.ddim_reverse_sample(self.unet, latent, t, clip_denoised=True, eta=0.0)["sample"]
        return latent

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """`x` inverted to noise and sampled back with `ddim_sample_loop` (clipping, eta 0)."""
        latent = self.invert(x)
        return self.diffusion.ddim_sample_loop(self.unet, tuple(x.shape), noise=latent, clip_denoised=True, eta=0.0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Quantized DIRE images (N×3×S×S uint8) of frames in [-1, 1]."""
        return quantize(x.float() - self.reconstruct(x).float())


def quantize(difference: torch.Tensor) -> torch.Tensor:
    """floor(|x − recon| · 255 / 2) clamped to 0..255, as uint8 (the DIRE PNG pixel values)."""
    return torch.floor(difference.abs() * 255 / 2).clamp(0, 255).to(torch.uint8)
