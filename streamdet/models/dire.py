"""DIRE (Wang et al., ICCV 2023): the reconstruction-error image of a frame after DDIM inversion and reconstruction
with the ADM, and the ResNet-50 classifier that reads it. One implementation serves `prepare` (the teacher's
input) and `--method dire` (docs/design.md §2)."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision.transforms.v2.functional as TF
from torch import nn
from torchvision.models import resnet50

from ..config import ADMConfig
from ..errors import ConfigError
from ..weights import load_checkpoint, load_into, state_dict_of
from .adm import build_diffusion, load_adm, predict_eps, time_embedding

# What the DIRE classifier reads (its reference `demo.py`): short side 256, centre 224, ImageNet mean and std.
CLASSIFIER_RESIZE = 256
CLASSIFIER_CROP = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_dire_steps(steps: int, diffusion_steps: int) -> None:
    """Refuse a DIRE step count that guided-diffusion's `ddimN` respacing cannot make: it strides the ADM's
    `diffusion_steps` with an integer stride, so 1 (and some larger counts) cannot be had."""
    counts = {len(range(0, diffusion_steps, stride)) for stride in range(1, diffusion_steps)}
    if steps not in counts:
        nearest = f" (nearest that can: {min(counts, key=lambda c: (abs(c - steps), c))}; DIRE uses 20)" if counts else ""
        raise ConfigError(f"--dire-steps {steps} (train.dire_steps): DDIM cannot stride the ADM's {diffusion_steps} steps into exactly {steps}{nearest}")


def _float32(values: object) -> torch.Tensor:
    """A float64 schedule array as guided-diffusion's `_extract_into_tensor` hands it out: float32."""
    return torch.as_tensor(values).float()


class DIRE(nn.Module):
    """Frames in [-1, 1] → their quantized DIRE images: DDIM over `steps` respaced steps (clipping, eta 0),
    inverted to noise over all steps, reconstructed over all steps, `floor(|x − recon| · 255 / 2)`.

    The arithmetic is guided-diffusion's `ddim_reverse_sample` / `ddim_sample` with the same float32
    coefficients, written as tensors on the module so that a step does no host work: each step's timestep
    embedding is computed once, here (from the loaded weights), the UNet output is taken in fp32 whatever
    the autocast, and `predict` is the one function torch.compile needs to trace.
    """

    def __init__(self, unet: nn.Module, cfg: ADMConfig, steps: int = 20) -> None:
        super().__init__()
        if getattr(unet, "num_classes", None) is not None:
            raise ConfigError("a class-conditional ADM is not supported: DIRE is defined for the unconditional model (class_cond: false)")
        check_dire_steps(steps, cfg.diffusion_steps)
        self.unet = unet
        diffusion = build_diffusion(cfg, f"ddim{steps}")
        self.steps = diffusion.num_timesteps
        self.register_buffer("recip", _float32(diffusion.sqrt_recip_alphas_cumprod), persistent=False)
        self.register_buffer("recipm1", _float32(diffusion.sqrt_recipm1_alphas_cumprod), persistent=False)
        self.register_buffer("abar_next", _float32(diffusion.alphas_cumprod_next), persistent=False)
        self.register_buffer("abar_prev", _float32(diffusion.alphas_cumprod_prev), persistent=False)
        embeddings = torch.cat([time_embedding(unet, int(t)) for t in diffusion.timestep_map])
        self.register_buffer("embeddings", embeddings, persistent=False)

    def predict(self, z: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """The UNet's eps prediction for latents `z` at the step whose embedding is given, in float32."""
        return predict_eps(self.unet, z, embedding).float()

    def _x0_eps(self, z: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Clipped x0 and the eps re-derived from it at respaced step `i` (`p_mean_variance` + `_predict_eps_from_xstart`)."""
        x0 = (self.recip[i] * z - self.recipm1[i] * self.predict(z, self.embeddings[i : i + 1])).clamp(-1, 1)
        return x0, (self.recip[i] * z - x0) / self.recipm1[i]

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        """The DDIM latent of `x` after all steps, t = 0 upwards (`ddim_reverse_sample` at each)."""
        z = x.float()
        for i in range(self.steps):
            x0, eps = self._x0_eps(z, i)
            z = x0 * torch.sqrt(self.abar_next[i]) + torch.sqrt(1 - self.abar_next[i]) * eps
        return z

    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """A latent sampled back to an image over all steps, last downwards (`ddim_sample` with eta 0 at each)."""
        for i in reversed(range(self.steps)):
            x0, eps = self._x0_eps(z, i)
            z = x0 * torch.sqrt(self.abar_prev[i]) + torch.sqrt(1 - self.abar_prev[i]) * eps
        return z

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """`x` inverted to noise and sampled back (float32)."""
        return self.sample(self.invert(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Quantized DIRE images (N×3×S×S uint8) of frames in [-1, 1]."""
        return quantize(x.float() - self.reconstruct(x))


def quantize(difference: torch.Tensor) -> torch.Tensor:
    """floor(|x − recon| · 255 / 2) clamped to 0..255, as uint8 (the DIRE PNG pixel values)."""
    return torch.floor(difference.abs() * 255 / 2).clamp(0, 255).to(torch.uint8)


class DIREClassifier(nn.Module):
    """DIRE's detector: torchvision's ResNet-50 with one logit, reading the 8-bit DIRE image resized so its short
    side is 256, centre-cropped to 224, scaled to [0, 1] and normalised with ImageNet's mean and std."""

    def __init__(self) -> None:
        super().__init__()
        self.net = resnet50(weights=None, num_classes=1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def prepare(self, dire: torch.Tensor) -> torch.Tensor:
        """DIRE images (N×3×H×W, uint8 or 0..255 float) → the normalised N×3×224×224 float32 input of the network;
        resized as 8-bit images by torchvision (which rounds as PIL does)."""
        x = dire.round().clamp(0, 255).to(torch.uint8) if dire.is_floating_point() else dire
        if min(x.shape[-2:]) != CLASSIFIER_RESIZE:
            x = TF.resize(x, [CLASSIFIER_RESIZE], antialias=True)
        x = TF.center_crop(x, [CLASSIFIER_CROP, CLASSIFIER_CROP]).float() / 255
        return (x - self.mean) / self.std

    def forward(self, dire: torch.Tensor) -> torch.Tensor:
        """Logits (N,) for uint8 DIRE images; P(fake) is their sigmoid."""
        return self.net(self.prepare(dire)).squeeze(1).float()


def load_dire_classifier(path: str | Path) -> DIREClassifier:
    """A DIRE classifier from an official checkpoint (`{"model": state_dict, ...}` or a bare state_dict, `module.` allowed)."""
    state = state_dict_of(load_checkpoint(path), path)
    classifier = DIREClassifier().eval()
    load_into(classifier.net, state, path, "DIRE classifier (ResNet-50, 1 output)")
    return classifier


def load_dire(cfg: ADMConfig, path: str | Path, steps: int = 20) -> DIRE:
    """The DIRE reconstruction of an official-format ADM checkpoint (`prepare` and `--method dire`)."""
    return DIRE(load_adm(cfg, path), cfg, steps)
