"""Official checkpoints: where they come from, where they are cached, how they are fetched and read."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .errors import WeightsError


@dataclass(frozen=True)
class WeightFile:
    """One published checkpoint: its registry name, URL, file name and what it holds."""

    name: str
    kind: str
    url: str
    size_mb: int
    description: str
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


REGISTRY: dict[str, WeightFile] = {
    w.name: w
    for w in (
        WeightFile(
            "adm-256-uncond",
            "adm",
            "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/256x256_diffusion_uncond.pt",
            2108,
            "ADM (guided-diffusion) ImageNet 256x256 unconditional UNet",
        ),
        WeightFile(
            "distildire-imagenet",
            "student",
            "https://huggingface.co/yevvonlim/distildire/resolve/main/imagenet-distil-dire-11e.pth",
            283,
            "DistilDIRE student trained on ImageNet (ADM fakes)",
        ),
        WeightFile(
            "distildire-celebahq",
            "student",
            "https://huggingface.co/yevvonlim/distildire/resolve/main/celebahq-distil-dire-34e.pth",
            283,
            "DistilDIRE student trained on CelebA-HQ faces",
        ),
    )
}

Progress = Callable[[int, int | None], None]


def file_sha256(path: str | Path) -> str:
    """The hex SHA-256 of a file, read in 8 MiB pieces (checkpoints are gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def home() -> Path:
    """The cache folder: `$STREAMDET_HOME`, else `~/.cache/streamdet`."""
    root = os.environ.get("STREAMDET_HOME")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "streamdet"


def offline() -> bool:
    """True when `STREAMDET_OFFLINE` asks streamdet never to download."""
    return os.environ.get("STREAMDET_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def cached_path(weight: WeightFile) -> Path:
    """Where the cached copy of `weight` lives (it may not exist yet)."""
    return home() / "weights" / weight.filename


def download(url: str, dest: Path, progress: Progress | None = None, timeout: float = 30.0) -> Path:
    """Fetch `url` into `dest` through a temporary file renamed only once every byte has arrived."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f"{dest.name}.part-{os.getpid()}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = response.headers.get("Content-Length")
            total = int(total) if total is not None else None
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
            if total is not None and done != total:
                raise WeightsError(f"{url}: download cut short ({done} of {total} bytes)")
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, dest)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise WeightsError(f"{url}: download failed: {getattr(exc, 'reason', exc)}") from None
    finally:
        part.unlink(missing_ok=True)
    return dest


def _missing_message(weight: WeightFile, reason: str) -> str:
    return (
        f"{weight.name}: checkpoint {weight.filename} is not cached ({reason}); "
        f"download {weight.url} and put it at {cached_path(weight)}, or pass the file with --{weight.kind}"
    )


def resolve(spec: str | Path, progress: Progress | None = None) -> Path:
    """Turn a registry name or a file path into a local file, downloading an official file if needed."""
    spec_str = str(spec)
    if not spec_str:
        raise WeightsError("no checkpoint given: this config names none, pass a file with --adm / --student")
    weight = REGISTRY.get(spec_str)
    if weight is None:
        path = Path(spec_str).expanduser()
        if not path.exists():
            known = ", ".join(REGISTRY)
            raise WeightsError(f"{spec_str}: no such checkpoint file or registered name (registered: {known})")
        if not path.is_file():
            raise WeightsError(f"{spec_str}: is not a file")
        return path
    path = cached_path(weight)
    if path.is_file():
        return path
    if offline():
        raise WeightsError(_missing_message(weight, "STREAMDET_OFFLINE is set"))
    try:
        return download(weight.url, path, progress)
    except WeightsError as exc:
        raise WeightsError(_missing_message(weight, str(exc))) from None


def load_checkpoint(path: str | Path) -> Any:
    """Read a checkpoint as data only (`weights_only=True`); any failure is one line naming the file."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise WeightsError(f"{path}: empty file, not a checkpoint")
        return torch.load(path, map_location="cpu", weights_only=True)
    except WeightsError:
        raise
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such checkpoint file") from None
    except (zipfile.BadZipFile, EOFError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "zip" in first.lower() or "central directory" in first.lower() or isinstance(exc, EOFError):
            raise WeightsError(f"{path}: truncated or corrupt checkpoint ({first})") from None
        raise WeightsError(f"{path}: cannot load checkpoint ({first})") from None
    except Exception as exc:  # pickle errors, weights_only refusals, OS errors: all are "not a checkpoint"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a PyTorch checkpoint ({first})") from None


def state_dict_of(obj: Any, path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: a plain state_dict or a `{"model": state_dict, ...}` file, `module.` stripped."""
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{path}: checkpoint holds no state_dict (found {type(obj).__name__})")
    state: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        state[key[len("module.") :] if key.startswith("module.") else key] = value
    return state


def load_into(module: torch.nn.Module, state: Mapping[str, torch.Tensor], path: str | Path, what: str) -> None:
    """Copy `state` into `module` after checking keys and shapes, so that a mismatch is one clear line."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {unexpected[0]})")
        raise WeightsError(f"{path}: does not fit the {what}: {', '.join(parts)}")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise WeightsError(
                f"{path}: does not fit the {what}: {key} has shape {tuple(state[key].shape)}, "
                f"the config needs {tuple(tensor.shape)}"
            )
    module.load_state_dict(state, strict=True)


def fetch_all(names: list[str], progress_factory: Callable[[WeightFile], Progress] | None = None) -> list[Path]:
    """Download the named official files (all when `names` is empty) into the cache."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise WeightsError(f"{unknown[0]}: not a registered checkpoint (registered: {', '.join(REGISTRY)})")
    paths = []
    for name in names or list(REGISTRY):
        weight = REGISTRY[name]
        progress = progress_factory(weight) if progress_factory else None
        paths.append(resolve(name, progress))
    return paths

