"""Typed, validated settings, loaded from the built-in configs (by name) or a YAML file and overridden by options.

The settings classes are pydantic dataclasses: they stay plain dataclasses for the rest of the code
(`dataclasses.replace`, `dataclasses.asdict`), and every construction, a replace included, is type- and range-checked.
"""

from __future__ import annotations

import dataclasses
import reprlib
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import torch
import yaml
from pydantic import BeforeValidator, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.dataclasses import dataclass

from .errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

Precision = Literal["auto", "fp32", "fp16", "bf16"]
NoisePrecision = Literal["auto", "fp32", "fp16", "bf16", "int8", "fp8"]
Positive = Annotated[StrictInt, Field(ge=1)]
Fraction = Annotated[StrictFloat, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[StrictFloat, Field(ge=0.0)]
DeviceName = Annotated[StrictStr, BeforeValidator(lambda v: str(v) if isinstance(v, torch.device) else v)]
_STRICT = ConfigDict(extra="forbid")
Number = Annotated[StrictInt | StrictFloat, Field(ge=0)]
MAX_PIXELS = 100_000_000  # the default `max_pixels`: larger pictures are refused (streamdet.video.headers, docs/security.md)
MAX_CONFIG_BYTES = 1 << 20  # a config file is a few KB; larger ones are refused unread
MAX_CONFIG_VALUES = 100_000  # values a config may expand to through YAML aliases (an alias bomb expands to billions)
_QUOTE = reprlib.Repr()  # quotes of a value in an error: bounded, however large the value
_QUOTE.maxstring = _QUOTE.maxother = 60
_QUOTE.maxlist = _QUOTE.maxtuple = _QUOTE.maxdict = 4
_QUOTE.maxlevel = 2
_SECTIONS = {"ADMConfig": "adm.", "WeightsConfig": "weights.", "SamplingConfig": "sampling.", "TrainConfig": "train.", "AugmentConfig": "train.augment."}


def _one_line(source: str, error: Mapping[str, Any], section: str = "") -> str:
    """One pydantic error as `SOURCE: KEY: problem`, naming the expected type and what was found."""
    key = section + ".".join(str(part) for part in error["loc"]) or "top level"
    value = error.get("input")
    found = f"got {type(value).__name__} {_QUOTE.repr(value)}"
    kind = error["type"]
    expected = {
        "float_type": "a number",
        "int_type": "a whole number",
        "bool_type": "true or false",
        "string_type": "a string",
        "dataclass_type": "a mapping of settings",
        "literal_error": f"one of {error.get('ctx', {}).get('expected', '')}",
    }.get(kind)
    if kind == "unexpected_keyword_argument":
        return f"{source}: unknown setting '{key}'"
    if expected is not None:
        return f"{source}: {key}: expected {expected}, {found}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"{source}: {key}: {error['msg'].replace('Input should be ', 'must be ')}, not {_QUOTE.repr(value)}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{source}: {key}: {message}"


def _as_config_error(cls: type, values: Any, handler: Any, info: ValidationInfo) -> Any:
    """Report a failed construction (a `dataclasses.replace` included) as a one-line ConfigError.

    Inside `load_config` (which passes a context) the error is left to the caller, which knows the file.
    """
    try:
        return handler(values)
    except ValidationError as exc:
        if info.context:
            raise
        raise ConfigError(_one_line("invalid setting", exc.errors(include_url=False)[0], _SECTIONS.get(cls.__name__, ""))) from None


@dataclass(config=_STRICT)
class ADMConfig:
    """The ADM UNet and its diffusion schedule, in guided-diffusion's own flag names.

    The defaults are the official ImageNet 256x256 unconditional model.
    """

    image_size: Positive = 256
    num_channels: Positive = 256
    num_res_blocks: Positive = 2
    channel_mult: StrictStr = ""
    num_heads: Positive = 4
    num_head_channels: StrictInt = 64
    num_heads_upsample: StrictInt = -1
    attention_resolutions: StrictStr = "32,16,8"
    dropout: Fraction = 0.0
    learn_sigma: StrictBool = True
    class_cond: StrictBool = False
    use_checkpoint: StrictBool = False
    use_scale_shift_norm: StrictBool = True
    resblock_updown: StrictBool = True
    use_fp16: StrictBool = False
    use_new_attention_order: StrictBool = False
    diffusion_steps: Positive = 1000
    noise_schedule: Literal["linear", "cosine"] = "linear"

    _errors = model_validator(mode="wrap")(_as_config_error)

    @field_validator("use_fp16")
    @classmethod
    def _no_fp16_conversion(cls, value: bool) -> bool:
        """guided-diffusion's fp16 conversion halves the UNet but not its inputs; streamdet casts with autocast instead."""
        if value:
            raise ValueError(
                "true is not supported (guided-diffusion's half-precision UNet does not run on streamdet's fp32 inputs); "
                "set use_fp16: false and choose the compute precision with --precision fp16|bf16 or `precision:`"
            )
        return value


@dataclass(config=_STRICT)
class WeightsConfig:
    """Which checkpoints to use: a name from `streamdet weights list`, or a file path."""

    adm: StrictStr = "adm-256-uncond"
    student: StrictStr = "distildire-imagenet"
    dire: StrictStr = "dire-imagenet-adm"

    _errors = model_validator(mode="wrap")(_as_config_error)


@dataclass(config=_STRICT)
class SamplingConfig:
    """Which frames of a video to analyse (see `streamdet.video.Sampling`)."""

    mode: Literal["uniform", "every", "fps", "keyframes", "all"] = "uniform"
    frames: Positive = 16
    every: Positive = 1
    fps: Annotated[StrictFloat, Field(gt=0.0)] = 1.0
    snap: Literal["none", "keyframes"] = "none"

    _errors = model_validator(mode="wrap")(_as_config_error)


@dataclass(config=_STRICT)
class AugmentRange:
    """One augmentation op: the probability it is applied to a copy, and the range its strength is drawn from (uniform, inclusive)."""

    prob: Fraction = 0.0
    min: Number = 0
    max: Number = 0

    @model_validator(mode="after")
    def _ordered(self) -> AugmentRange:
        """The range must not be empty."""
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


@dataclass(config=_STRICT)
class AugmentConfig:
    """The ops `prepare` applies to each augmented copy (`train.copies`), in this order; strengths mean what `eval --degrade` means."""

    scale: AugmentRange = dataclasses.field(default_factory=lambda: AugmentRange(0.3, 0.5, 1.0))
    blur: AugmentRange = dataclasses.field(default_factory=lambda: AugmentRange(0.2, 0.5, 2.0))
    noise: AugmentRange = dataclasses.field(default_factory=lambda: AugmentRange(0.2, 1.0, 5.0))
    jpeg: AugmentRange = dataclasses.field(default_factory=lambda: AugmentRange(0.3, 30, 95))
    h264: AugmentRange = dataclasses.field(default_factory=lambda: AugmentRange(0.5, 23, 38))
    hevc: AugmentRange = dataclasses.field(default_factory=lambda: AugmentRange(0.3, 23, 38))

    _errors = model_validator(mode="wrap")(_as_config_error)


@dataclass(config=_STRICT)
class TrainConfig:
    """Distillation training of the student (`streamdet prepare`, `train`, `eval`)."""

    epochs: Positive = 20
    batch: Positive = 32
    lr: Annotated[StrictFloat, Field(gt=0.0)] = 1e-4
    min_lr: NonNegative = 1e-6
    weight_decay: NonNegative = 0.0
    kd: StrictBool = True
    kd_weight: NonNegative = 0.5
    val_fraction: Fraction = 0.1
    seed: StrictInt = 3407
    flip_prob: Fraction = 0.5
    jpeg_prob: Fraction = 1.0
    jpeg_min_quality: Annotated[StrictInt, Field(ge=1, le=100)] = 10
    jpeg_max_quality: Annotated[StrictInt, Field(ge=1, le=100)] = 99
    copies: Annotated[StrictInt, Field(ge=0)] = 0
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    workers: Annotated[StrictInt, Field(ge=0)] = 4
    precision: Precision = "auto"
    dire_steps: Positive = 20  # DDIM steps of DIRE: for prepare and for `method: dire` alike
    teacher: StrictStr = ""

    _errors = model_validator(mode="wrap")(_as_config_error)

    @model_validator(mode="after")
    def _quality_range(self) -> TrainConfig:
        """The JPEG quality range must not be empty."""
        if self.jpeg_min_quality > self.jpeg_max_quality:
            raise ValueError(f"jpeg_min_quality {self.jpeg_min_quality} is above jpeg_max_quality {self.jpeg_max_quality}")
        return self


@dataclass(config=_STRICT)
class Config:
    """Everything a detector and a scan need; one YAML file maps onto it (`source` names that file)."""

    adm: ADMConfig = dataclasses.field(default_factory=ADMConfig)
    weights: WeightsConfig = dataclasses.field(default_factory=WeightsConfig)
    sampling: SamplingConfig = dataclasses.field(default_factory=SamplingConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    method: Literal["distildire", "dire"] = "distildire"
    device: DeviceName = "auto"
    precision: NoisePrecision = "auto"
    batch: Positive = 16
    threshold: Fraction = 0.5
    top_fraction: Annotated[StrictFloat, Field(gt=0.0, le=1.0)] = 0.25
    uncertain: list[Fraction] | None = None
    crops: Literal["center", "cover", "faces"] = "center"
    channels_last: StrictBool = True
    max_pixels: Positive = MAX_PIXELS
    source: StrictStr = "<defaults>"

    _errors = model_validator(mode="wrap")(_as_config_error)

    @field_validator("uncertain")
    @classmethod
    def _band(cls, value: list[float] | None) -> list[float] | None:
        """The uncertain band is [LOW, HIGH] with LOW < HIGH (scores in between are UNCERTAIN)."""
        if value is not None and (len(value) != 2 or not value[0] < value[1]):
            raise ValueError(f"expected [LOW, HIGH] with LOW < HIGH, got {_QUOTE.repr(value)}")
        return value


def builtin_configs() -> list[str]:
    """The names of the configs shipped with streamdet."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def find_config(name: str | Path) -> Path:
    """Resolve a config given as a path or as the name of a built-in config."""
    path = Path(name)
    if path.is_file():
        return path
    candidate = CONFIG_DIR / f"{name}.yaml"
    if candidate.is_file():
        return candidate
    if path.is_dir():
        raise ConfigError(f"{name}: is a folder, not a config file")
    if path.exists():
        raise ConfigError(f"{name}: is not a regular file, so not a config file")
    known = ", ".join(builtin_configs()) or "none"
    raise ConfigError(f"{name}: no such config file or built-in config (built-in: {known})")


def parse_config(data: Any, source: str) -> Config:
    """A validated Config from the mapping read out of `source`; any problem is one line naming `source` and the key."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: top level: expected a mapping of settings, got {type(data).__name__}")
    if "source" in data:
        raise ConfigError(f"{source}: unknown setting 'source'")
    try:
        return Config.__pydantic_validator__.validate_python({**data, "source": source}, context={"source": source})
    except ValidationError as exc:
        raise ConfigError(_one_line(source, exc.errors(include_url=False)[0])) from None


def load_config(name: str | Path | None = None, **overrides: Any) -> Config:
    """Load a config (default: the built-in defaults) and apply non-None top-level overrides."""
    if name is None:
        return with_overrides(Config(), **overrides)
    path = find_config(name)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size} bytes, too large for a config (at most {MAX_CONFIG_BYTES})")
        text = path.read_text()
        _check_expansion(yaml.compose(text, Loader=yaml.SafeLoader), path)
        data = yaml.safe_load(text) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(f"{path}: cannot read config: nested too deeply") from None
    return with_overrides(parse_config(data, str(path)), **overrides)


def _check_expansion(root: yaml.Node | None, path: Path) -> None:
    """Refuse a document whose aliases expand it past `MAX_CONFIG_VALUES` values, or refer back into themselves."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in open_nodes:
            raise ConfigError(f"{path}: an alias refers to a value that contains it (a recursive alias); refused")
        open_nodes.add(id(node))
        children = [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode) else node.value if isinstance(node, yaml.SequenceNode) else []
        sizes[id(node)] = 1 + sum(size(child) for child in children)
        open_nodes.discard(id(node))
        if sizes[id(node)] > MAX_CONFIG_VALUES:
            raise ConfigError(f"{path}: its aliases expand it to more than {MAX_CONFIG_VALUES} values (an alias bomb?); refused")
        return sizes[id(node)]

    if root is not None:
        size(root)


def with_overrides(config: Config, **overrides: Any) -> Config:
    """`config` with the given non-None top-level settings replaced (and validated again)."""
    updates = {k: v for k, v in overrides.items() if v is not None}
    if not updates:
        return config
    try:
        return dataclasses.replace(config, **updates)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("invalid setting: ", "option ", 1)) from None
