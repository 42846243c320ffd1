"""Reference computations the tests compare streamdet against, written with the original libraries' own code."""

from __future__ import annotations

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision import transforms

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


def dire_loader(image: np.ndarray, size: int) -> np.ndarray:
    """The DIRE reference's image loading (guided-diffusion's `image_datasets.center_crop_arr`), written with PIL itself:
    box-filter halving while the short side is at least 2·size, bicubic resize to short side `size` (each side
    `round(side · scale)`), crop offset `(side − size) // 2`; H×W×3 uint8 in, size×size×3 uint8 out.

    Each resize runs as two one-axis PIL resizes, horizontal then vertical: the pass order of every Pillow up to 12 (the
    reference's), where Pillow 13 runs some reductions vertically first (python-pillow/Pillow#9549), which rounds the
    8-bit image between the passes differently."""

    def resize(im: Image.Image, width: int, height: int, resample: Image.Resampling) -> Image.Image:
        if width != im.width:
            im = im.resize((width, im.height), resample=resample)
        return im.resize((width, height), resample=resample) if height != im.height else im

    im = Image.fromarray(image)
    while min(*im.size) >= 2 * size:
        im = resize(im, im.width // 2, im.height // 2, Image.Resampling.BOX)
    scale = size / min(*im.size)
    im = resize(im, *(round(side * scale) for side in im.size), Image.Resampling.BICUBIC)
    arr = np.array(im)
    top, left = (arr.shape[0] - size) // 2, (arr.shape[1] - size) // 2
    return arr[top : top + size, left : left + size]


def distildire_loader(image: np.ndarray, size: int) -> torch.Tensor:
    """The DistilDIRE reference's image loading (its `TMDistilDireDataset`): `to_tensor(image) * 2 − 1`, then torchvision's
    `Resize(size, antialias=True)` and `CenterCrop(size)` on that tensor; 3×size×size float32 in [-1, 1]."""
    x = TF.to_tensor(Image.fromarray(image)) * 2 - 1
    return transforms.Compose([transforms.Resize(size, antialias=True), transforms.CenterCrop((size, size))])(x)
