"""Reference computations the tests compare streamdet against, written with the original libraries' own code."""

from __future__ import annotations

import torch

from streamdet.config import ADMConfig
from streamdet.models.adm import build_diffusion


def guided_diffusion_dire(unet: torch.nn.Module, steps: int, cfg: ADMConfig, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The DIRE reference's (latent, reconstruction): its `ddim_reverse_sample_loop` (guided-diffusion's `ddim_reverse_sample`
    at t = 0, 1, …, which is all that loop does; the pip guided-diffusion lacks the loop) then guided-diffusion's `ddim_sample_loop`."""
    d = build_diffusion(cfg, f"ddim{steps}")
    latent = x
    for step in range(d.num_timesteps):
        t = torch.full((len(x),), step, dtype=torch.long)
        latent = d.ddim_reverse_sample(unet, latent, t, clip_denoised=True, eta=0.0)["sample"]
    recon = d.ddim_sample_loop(unet, tuple(x.shape), noise=latent, clip_denoised=True, eta=0.0)
    return latent, recon
