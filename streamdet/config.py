"""Typed, validated settings, loaded from the built-in configs (by name) or a YAML file and overridden by options.

The settings classes are pydantic dataclasses: they stay plain dataclasses for the rest of the code
(`dataclasses.replace`, `dataclasses.asdict`), and every construction, a replace included, is type- and range-checked.
"""

from __future__ import annotations

import copy
import dataclasses
import reprlib
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

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
DeviceName = Annotated[StrictStr, BeforeValidator(lambda v: str(v) if type(v).__name__ == "device" else v)]  # a torch.device too, without importing torch
_STRICT = ConfigDict(extra="forbid")
Number = Annotated[StrictInt | StrictFloat, Field(ge=0)]
_SECTIONS = {
    "ADMConfig": "adm.", "WeightsConfig": "weights.", "Sampling": "sampling.", "TrainConfig": "train.", "AugmentConfig": "train.augment.",
    "CascadeConfig": "cascade.", "WatchConfig": "watch.", "ClusterConfig": "cluster.", "ExportConfig": "export.", "CompressConfig": "compress.",
    "ServeConfig": "serve.",
}
SAMPLING_MODES = ("uniform", "every", "fps", "keyframes", "all")
SNAPS = ("none", "keyframes")
Rate = Annotated[StrictInt | StrictFloat, Field(gt=0, allow_inf_nan=False)]
Seconds = Annotated[StrictInt | StrictFloat, Field(gt=0, allow_inf_nan=False)]
MAX_PIXELS = 100_000_000  # the default `max_pixels`: larger pictures are refused (streamdet.video.headers, docs/security.md)
MAX_CONFIG_BYTES = 1 << 20  # a config file is a few KB; larger ones are refused unread
MAX_CONFIG_VALUES = 100_000  # values a config may expand to through YAML aliases (an alias bomb expands to billions)
_QUOTE = reprlib.Repr()  # quotes of a value in an error: bounded, however large the value
_QUOTE.maxstring = _QUOTE.maxother = 60
_QUOTE.maxlist = _QUOTE.maxtuple = _QUOTE.maxdict = 4
_QUOTE.maxlevel = 2


def _one_line(source: str, error: Mapping[str, Any], section: str = "", flags: Mapping[str, str] | None = None) -> str:
    """One pydantic error as `SOURCE: KEY: problem` (or `--flag: problem` where a command-line option set KEY),
    naming the expected type and what was found."""
    key = (section + ".".join(str(part) for part in error["loc"])).rstrip(".") or "top level"
    where = flags[key] if flags and key in flags else f"{source}: {key}"
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
        return f"{source}: unknown setting '{key}'{_did_you_mean(key)}"
    if expected is not None:
        return f"{where}: expected {expected}, {found}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"{where}: {error['msg'].replace('Input should be ', 'must be ')}, not {_QUOTE.repr(value)}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"


def _did_you_mean(key: str) -> str:
    """", did you mean 'X'?" for the known setting closest to an unknown `key` (same section), else ""."""
    import difflib

    section, _, name = key.rpartition(".")
    owner: Any = Config
    for part in section.split(".") if section else []:
        fields = {f.name: f for f in dataclasses.fields(owner)} if dataclasses.is_dataclass(owner) else {}
        kind = fields[part].type if part in fields else None
        owner = _SECTION_TYPES.get(part) if kind is not None else None
        if owner is None:
            return ""
    names = [f.name for f in dataclasses.fields(owner) if f.name != "source"]
    close = difflib.get_close_matches(name, names, n=1)
    return f", did you mean '{(section + '.') if section else ''}{close[0]}'?" if close else ""


def _as_config_error(cls: type, values: Any, handler: Any, info: ValidationInfo) -> Any:
    """Report a failed construction (a `dataclasses.replace` included) as a one-line ConfigError.

    Inside `load_config` (which passes a context) the error is left to the caller, which knows the file.
    """
    try:
        return handler(values)
    except ValidationError as exc:
        if info.context:
            raise
        error = exc.errors(include_url=False)[0]
        names = [field.name for field in dataclasses.fields(cls)]
        loc = tuple(names[part] if isinstance(part, int) and part < len(names) else part for part in error["loc"])
        raise ConfigError(_one_line("invalid setting", {**error, "loc": loc}, _SECTIONS.get(cls.__name__, ""))) from None


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


@dataclass(config=_STRICT, frozen=True)
class Sampling:
    """Which frames of a video to analyse: ``mode`` plus the parameter that mode uses.

    - ``uniform``: ``frames`` frames spread evenly over the duration (all frames if the video has fewer).
    - ``every``: every ``every``-th frame by index (0, n, 2n, ...).
    - ``fps``: ``fps`` frames per second of presentation time.
    - ``keyframes``: only key frames, decoded without decoding the frames between them.
    - ``all``: every frame.

    ``snap="keyframes"`` (``uniform`` only) moves each uniform target to the nearest key frame: much faster
    (key frames decode alone) but the times are only as close as the key-frame interval allows.
    """

    mode: Literal["uniform", "every", "fps", "keyframes", "all"] = "uniform"
    frames: Positive = 16
    every: Positive = 1
    fps: Rate = 1.0
    snap: Literal["none", "keyframes"] = "none"

    @field_validator("snap")
    @classmethod
    def _snap_uniform(cls, value: str, info: ValidationInfo) -> str:
        """Snapping moves uniform targets; the other modes have no targets to move."""
        mode = info.data.get("mode", "uniform")
        if value != "none" and mode != "uniform":
            raise ValueError(f"applies to uniform sampling only, not {mode!r}")
        return value

    _errors = model_validator(mode="wrap")(_as_config_error)

    @classmethod
    def parse(cls, spec: str) -> Sampling:
        """A rule from a string: ``uniform[:N]``, ``every:N``, ``fps:R``, ``keyframes`` or ``all``."""
        mode, _, value = spec.strip().lower().partition(":")
        if mode not in SAMPLING_MODES:
            raise ConfigError(f"sampling {spec!r}: mode must be one of {', '.join(SAMPLING_MODES)}")
        if not value:
            if mode in ("every", "fps"):
                raise ConfigError(f"sampling {spec!r}: {mode} needs a value, e.g. '{mode}:2'")
            return cls(mode=mode)
        if mode in ("keyframes", "all"):
            raise ConfigError(f"sampling {spec!r}: {mode} takes no value")
        try:
            number = float(value) if mode == "fps" else int(value)
        except ValueError:
            raise ConfigError(f"sampling {spec!r}: {value!r} is not a valid number for {mode}") from None
        return cls(mode=mode, **{SAMPLING_PARAMETER[mode]: number})


SAMPLING_PARAMETER = {"uniform": "frames", "every": "every", "fps": "fps"}  # the one setting each mode reads


def sampling_choice(asked: Mapping[str, tuple[str, Any]], what: str = "") -> dict[str, Any]:
    """The settings of the one sampling mode a user asked for: `asked` maps each mode to (the name the user gave
    it, its value or None where not asked; any true value for a mode without a parameter). Two modes asked for
    are one ConfigError naming both (`what` before the names, e.g. "options ")."""
    chosen = [(mode, name, value) for mode, (name, value) in asked.items() if value is not None and value is not False]
    if len(chosen) > 1:
        raise ConfigError(f"{what}{' and '.join(name for _, name, _ in chosen)}: choose one frame sampling option")
    if not chosen:
        return {}
    mode, _, value = chosen[0]
    parameter = SAMPLING_PARAMETER.get(mode)
    return {"sampling.mode": mode, **({f"sampling.{parameter}": value} if parameter else {})}


@dataclass(config=_STRICT)
class CascadeConfig:
    """The lite triage (`--cascade`): the lite detector scores every frame; frames at or above `triage` go through the ADM."""

    lite: StrictStr | None = None
    triage: Fraction = 0.2

    _errors = model_validator(mode="wrap")(_as_config_error)


@dataclass(config=_STRICT)
class WatchConfig:
    """`streamdet watch`: stream reading, the sliding window and its alert levels, status and metrics."""

    fps: Rate = 2.0
    window: Seconds = 10.0
    raise_at: Fraction | None = None  # default: the threshold (HIGH with an uncertain band)
    clear_at: Fraction | None = None  # default: raise_at - 0.15 (LOW with an uncertain band)
    min_frames: Positive | None = None  # default: half a full window, at least 3
    status_every: Seconds = 30.0
    realtime: StrictBool = False
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    timeout: Seconds = 10.0
    max_backoff: Seconds = 60.0
    log_frames: StrictBool = False
    metrics_port: Annotated[StrictInt, Field(ge=0, le=65535)] | None = None
    duration: Seconds | None = None

    _errors = model_validator(mode="wrap")(_as_config_error)


@dataclass(config=_STRICT)
class ClusterConfig:
    """`streamdet batch` on Ray: where it runs, its detector actors, part files and retries."""

    address: StrictStr = "auto"
    actors: Positive | None = None
    gpus_per_actor: NonNegative | None = None
    cpus_per_actor: NonNegative = 1.0
    num_cpus: Positive | None = None
    part_rows: Positive = 100
    part_seconds: NonNegative = 30.0
    retries: Annotated[StrictInt, Field(ge=0)] = 2
    ship_weights: StrictBool = False

    _errors = model_validator(mode="wrap")(_as_config_error)


@dataclass(config=_STRICT)
class ExportConfig:
    """`streamdet export`: format, precision and the batch range of the exported graphs."""

    format: Literal["onnx", "tensorrt"] = "onnx"
    precision: Literal["fp32", "fp16", "bf16", "int8", "fp8"] = "fp32"
    min_batch: Positive = 1
    opt_batch: Positive | None = None
    max_batch: Positive | None = None
    calibration_frames: Positive = 128

    _errors = model_validator(mode="wrap")(_as_config_error)


@dataclass(config=_STRICT)
class CompressConfig:
    """`streamdet compress`: the fine-tune against the original student."""

    steps: Annotated[StrictInt, Field(ge=0)] = 50
    batch: Positive = 8
    lr: NonNegative = 1e-6  # chosen by measurement: docs/compress.md
    labels: StrictBool = False
    check_every: Positive = 5  # fine-tune steps between held-out fidelity checks (the best state seen is kept)

    _errors = model_validator(mode="wrap")(_as_config_error)


@dataclass(config=_STRICT)
class ServeConfig:
    """`streamdet serve`: where it listens, where it keeps jobs, and the limits every request is held to."""

    host: StrictStr = "127.0.0.1"
    port: Annotated[StrictInt, Field(ge=0, le=65535)] = 8000
    media_root: StrictStr | None = None  # the one folder `path` requests may read; None: uploads only
    spool: StrictStr | None = None  # job database and uploads (default: STREAMDET_HOME/serve)
    max_upload_bytes: Positive = 512 * 1024 * 1024
    max_duration: Seconds = 600.0
    max_frames: Positive = 512  # frames one job may sample
    queue_size: Positive = 64  # jobs accepted and not finished, all clients together
    jobs_per_token: Positive = 16  # of those, per API token
    decode_jobs: Positive | None = None  # jobs decoded at once (default: twice the batch, at least one per core)
    retention: Seconds = 86400.0  # seconds a finished job stays readable
    webhooks: list[StrictStr] = dataclasses.field(default_factory=list)  # URL prefixes callbacks may go to
    ray: StrictStr | None = None  # a Ray address (as cluster.address takes it) to run as a Ray Serve app; None: one process
    ray_replicas: Positive | None = None  # most scoring replicas under Ray (default: one per GPU of the cluster, else 1)
    ray_batch_wait_s: NonNegative = 0.01  # how long a scoring replica waits to fill a batch with frames of other requests

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
    sampling: Sampling = dataclasses.field(default_factory=Sampling)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    cascade: CascadeConfig = dataclasses.field(default_factory=CascadeConfig)
    watch: WatchConfig = dataclasses.field(default_factory=WatchConfig)
    cluster: ClusterConfig = dataclasses.field(default_factory=ClusterConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    compress: CompressConfig = dataclasses.field(default_factory=CompressConfig)
    serve: ServeConfig = dataclasses.field(default_factory=ServeConfig)
    method: Literal["distildire", "dire", "both"] = "distildire"
    backend: Literal["torch", "compile", "onnxruntime", "tensorrt"] = "torch"
    engines: StrictStr = "engines"
    student_precision: NoisePrecision | None = None
    decoder: Literal["cpu", "nvdec", "auto"] = "cpu"
    decode_workers: Positive | None = None
    device: DeviceName = "auto"
    precision: NoisePrecision = "auto"
    batch: Positive = 16
    threshold: Fraction = 0.5
    top_fraction: Annotated[StrictFloat, Field(gt=0.0, le=1.0)] = 0.25
    uncertain: list[Fraction] | None = None
    crops: Literal["center", "cover", "faces"] = "center"
    segment_gap_s: NonNegative = 0.0  # suspicious segments closer than this are merged (streamdet.segments)
    provenance: StrictBool = True  # read each file's C2PA manifest (streamdet.provenance)
    trust_anchors: StrictStr = ""  # PEM file of the C2PA signers' CAs to trust
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


def parse_config(data: Any, source: str, flags: Mapping[str, str] | None = None) -> Config:
    """A validated Config from the mapping read out of `source`; any problem is one line naming `source` and the key
    (or the command-line option, for keys in `flags`)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: top level: expected a mapping of settings, got {type(data).__name__}")
    if "source" in data:
        raise ConfigError(f"{source}: unknown setting 'source'")
    try:
        return Config.__pydantic_validator__.validate_python({**data, "source": source}, context={"source": source})
    except ValidationError as exc:
        raise ConfigError(_one_line(source, exc.errors(include_url=False)[0], flags=flags)) from None


def read_config(name: str | Path) -> tuple[dict[str, Any], str]:
    """The raw settings mapping of a config (a built-in name or a YAML file) and where it came from: the file, or
    the built-in's name (what `--config` takes, in messages and rebuild hints)."""
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
    builtin = path.resolve().parent == CONFIG_DIR.resolve() and str(name) == path.stem
    return data, path.stem if builtin else str(path)


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


def load_config(name: str | Path | None = None, overrides: Mapping[str, Any] | None = None, flags: Mapping[str, str] | None = None) -> Config:
    """The run's one settings object: defaults < the config (a built-in name or a YAML file) < `overrides`.

    `overrides` maps dotted keys (``threshold``, ``sampling.frames``) to values; None values are left out, so a
    command passes every option it has and only those given count. `flags` names the option that set a key, for
    errors. Everything is validated once, together.
    """
    data, source = read_config(name) if name is not None else ({}, "<defaults>")
    return parse_config(merged_settings(data, overrides or {}), source, flags)


def with_overrides(config: Config, overrides: Mapping[str, Any] | None = None, flags: Mapping[str, str] | None = None, **top: Any) -> Config:
    """`config` with the given non-None settings (dotted keys, or top-level keywords) replaced and validated again."""
    changes = {**(overrides or {}), **top}
    if all(value is None for value in changes.values()):
        return config
    data = {k: v for k, v in dataclasses.asdict(config).items() if k != "source"}
    return parse_config(merged_settings(data, changes), config.source, flags or {key: f"option {key}" for key in changes})


def merged_settings(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `data` with each non-None dotted key of `overrides` set (sections created as needed);
    `data` that is not a mapping is returned as it is, for validation to name."""
    if not isinstance(data, Mapping):
        return data  # type: ignore[return-value]
    out = copy.deepcopy(dict(data))
    for dotted, value in overrides.items():
        if value is None:
            continue
        *sections, name = dotted.split(".")
        node = out
        for part in sections:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {} if child is None else child
            if not isinstance(child, dict):
                break  # a section that is not a mapping: validation names it
            node = child
        else:
            node[name] = value
    return out


_SECTION_TYPES: dict[str, type] = {
    "adm": ADMConfig, "weights": WeightsConfig, "sampling": Sampling, "train": TrainConfig, "augment": AugmentConfig,
    "cascade": CascadeConfig, "watch": WatchConfig, "cluster": ClusterConfig, "export": ExportConfig, "compress": CompressConfig,
    "serve": ServeConfig,
}
