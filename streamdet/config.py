"""Typed settings, loaded from `configs/*.yaml` (by name or path) and overridden by options."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass
class ADMConfig:
    """The ADM UNet and its diffusion schedule, in guided-diffusion's own flag names.

    The defaults are the official ImageNet 256x256 unconditional model.
    """

    image_size: int = 256
    num_channels: int = 256
    num_res_blocks: int = 2
    channel_mult: str = ""
    num_heads: int = 4
    num_head_channels: int = 64
    num_heads_upsample: int = -1
    attention_resolutions: str = "32,16,8"
    dropout: float = 0.0
    learn_sigma: bool = True
    class_cond: bool = False
    use_checkpoint: bool = False
    use_scale_shift_norm: bool = True
    resblock_updown: bool = True
    use_fp16: bool = False
    use_new_attention_order: bool = False
    diffusion_steps: int = 1000
    noise_schedule: str = "linear"


@dataclass
class WeightsConfig:
    """Which checkpoints to use: a name from `streamdet weights list`, or a file path."""

    adm: str = "adm-256-uncond"
    student: str = "distildire-imagenet"


@dataclass
class SamplingConfig:
    """Which frames of a video to analyse (see `streamdet.video.Sampling`)."""

    mode: str = "uniform"
    frames: int = 16
    every: int = 1
    fps: float = 1.0
    snap: str = "none"


@dataclass
class TrainConfig:
    """Distillation training of the student (`streamdet prepare`, `train`, `eval`)."""

    epochs: int = 20
    batch: int = 32
    lr: float = 1e-4
    min_lr: float = 1e-6
    weight_decay: float = 0.0
    kd: bool = True
    kd_weight: float = 0.5
    val_fraction: float = 0.1
    seed: int = 3407
    flip_prob: float = 0.5
    jpeg_prob: float = 1.0
    jpeg_min_quality: int = 10
    jpeg_max_quality: int = 99
    workers: int = 4
    precision: str = "auto"
    dire_steps: int = 20
    teacher: str = ""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch", "dire_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, not {getattr(self, name)}")
        for name in ("val_fraction", "flip_prob", "jpeg_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"train.{name} must lie in [0, 1], not {getattr(self, name)}")
        if not 1 <= self.jpeg_min_quality <= self.jpeg_max_quality <= 100:
            raise ConfigError(f"train JPEG qualities must satisfy 1 <= min <= max <= 100, not {self.jpeg_min_quality}..{self.jpeg_max_quality}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"train.precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")


@dataclass
class Config:
    """Everything a detector and a scan need; one YAML file maps onto it."""

    adm: ADMConfig = field(default_factory=ADMConfig)
    weights: WeightsConfig = field(default_factory=WeightsConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    device: str = "auto"
    precision: str = "auto"
    batch: int = 16
    threshold: float = 0.5
    top_fraction: float = 0.25
    channels_last: bool = True
    source: str = "<defaults>"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"{self.source}: precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.batch < 1:
            raise ConfigError(f"{self.source}: batch must be at least 1, not {self.batch}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"{self.source}: threshold must lie in [0, 1], not {self.threshold}")
        if not 0.0 < self.top_fraction <= 1.0:
            raise ConfigError(f"{self.source}: top_fraction must lie in (0, 1], not {self.top_fraction}")


def _build(cls: type, data: Mapping[str, Any], source: str, prefix: str = "") -> Any:
    """Make dataclass `cls` from a mapping, recursing into nested dataclasses; unknown keys are errors."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: '{prefix or 'top level'}' must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields or key == "source":
            raise ConfigError(f"{source}: unknown setting '{prefix}{key}'")
        default = fields[key].default_factory() if fields[key].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            kwargs[key] = _build(type(default), value, source, f"{prefix}{key}.")
        else:
            kwargs[key] = value
    try:
        if cls is Config:
            kwargs["source"] = source
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def find_config(name: str | Path) -> Path:
    """Resolve a config given as a path or as the name of a file in `configs/`."""
    path = Path(name)
    if path.is_file():
        return path
    candidate = CONFIG_DIR / f"{name}.yaml"
    if candidate.is_file():
        return candidate
    known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))) or "none"
    raise ConfigError(f"{name}: no such config file or built-in config (built-in: {known})")


def load_config(name: str | Path | None = None, **overrides: Any) -> Config:
    """Load a config (default: the built-in defaults) and apply non-None top-level overrides."""
    data: dict[str, Any] = {}
    source = "<defaults>"
    if name is not None:
        path = find_config(name)
        source = str(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read config: {str(exc).splitlines()[0]}") from None
    return with_overrides(_build(Config, data, source), **overrides)


def with_overrides(config: Config, **overrides: Any) -> Config:
    """`config` with the given non-None top-level settings replaced (and validated again)."""
    updates = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(config, **updates) if updates else config
