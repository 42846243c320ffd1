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

__all__ = ["build_adm", "build_diffusion", "load_adm", "model_flags", "alpha_bar_0", "timestep_embedding"]

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
