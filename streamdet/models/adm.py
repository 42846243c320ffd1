"""Build guided-diffusion's ADM UNet and schedule from an `ADMConfig`, and load official weights into it."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import torch

from ..config import ADMConfig
from ..weights import load_checkpoint, load_into, state_dict_of

with warnings.catch_warnings():
    # guided_diffusion.nn uses the deprecated torch.cuda.amp decorators at import time.
    warnings.simplefilter("ignore", FutureWarning)
    from guided_diffusion import gaussian_diffusion, script_util
    from guided_diffusion.nn import timestep_embedding

__all__ = ["build_adm", "build_diffusion", "load_adm", "model_flags", "alpha_bar_0", "timestep_embedding", "predict_eps"]

_DIFFUSION_FLAGS = ("diffusion_steps", "noise_schedule")


def model_flags(cfg: ADMConfig) -> dict:
    """The keyword arguments of `guided_diffusion.script_util.create_model` for this config."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _DIFFUSION_FLAGS}


def build_adm(cfg: ADMConfig) -> torch.nn.Module:
    """A randomly initialised UNetModel, in eval mode (build it under `torch.device('meta')` to cost nothing)."""
    return script_util.create_model(**model_flags(cfg)).eval()


def load_adm(cfg: ADMConfig, path: str | Path) -> torch.nn.Module:
    """The UNet with the weights of an official-format checkpoint (a plain state_dict)."""
    state = state_dict_of(load_checkpoint(path), path)
    model = build_adm(cfg)
    load_into(model, state, path, f"ADM config ({cfg.image_size}px, {cfg.num_channels} channels)")
    return model


def build_diffusion(cfg: ADMConfig, respacing: str = "") -> gaussian_diffusion.GaussianDiffusion:
    """guided-diffusion's (optionally respaced, e.g. 'ddim20') diffusion process for this config."""
    return script_util.create_gaussian_diffusion(
        steps=cfg.diffusion_steps,
        learn_sigma=cfg.learn_sigma,
        noise_schedule=cfg.noise_schedule,
        timestep_respacing=respacing,
    )


def alpha_bar_0(cfg: ADMConfig) -> float:
    """The cumulative alpha of the first step of the schedule (1 - 1e-4 for the linear schedule)."""
    betas = gaussian_diffusion.get_named_beta_schedule(cfg.noise_schedule, cfg.diffusion_steps)
    return float(1.0 - betas[0])


def predict_eps(unet: torch.nn.Module, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
    """The UNet's eps prediction (its first 3 output channels) for a timestep embedding computed beforehand.

    The same blocks as `UNetModel.forward`, minus the sinusoid and `time_embed`: a caller that runs one timestep
    many times computes its embedding once, so a forward does no host work and compiles as one graph.
    """
    emb = embedding.expand(x.shape[0], -1)
    skips = []
    h = x.type(unet.dtype)
    for block in unet.input_blocks:
        h = block(h, emb)
        skips.append(h)
    h = unet.middle_block(h, emb)
    for block in unet.output_blocks:
        h = block(torch.cat([h, skips.pop()], dim=1), emb)
    return unet.out(h.type(x.dtype))[:, :3]


def time_embedding(unet: torch.nn.Module, timestep: int) -> torch.Tensor:
    """`unet.time_embed` of one timestep (1×D), as UNetModel.forward computes it, on the UNet's device."""
    with torch.no_grad():
        t = torch.full((1,), float(timestep), device=next(unet.parameters()).device)
        return unet.time_embed(timestep_embedding(t, unet.model_channels)).detach()
