"""Device, precision and autocast policy, shared by scan, watch, export and training."""

from __future__ import annotations

import contextlib

import torch

from .errors import ConfigError

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Quantized noise models: calibrated files from `streamdet export`, run by onnxruntime (int8) or tensorrt (int8, fp8).
QUANTIZED = ("int8", "fp8")
# fp8 tensor cores arrive with Ada and Hopper (compute capability 8.9).
FP8_CAPABILITY = (8, 9)

# bf16 runs natively from Ampere (compute capability 8.0) on; older GPUs emulate it, slower than fp16.
NATIVE_BF16 = (8, 0)


def pick_device(name: str) -> torch.device:
    """`auto` → the first CUDA GPU if there is one, else the CPU; anything else must be usable here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{name}: not a device (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{name}: CUDA is not available on this machine (no NVIDIA GPU, or a torch build without CUDA); run on the CPU with --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{name}: no such GPU ({torch.cuda.device_count()} present)")
    elif device.type != "cpu":
        raise ConfigError(f"{name}: unsupported device type (use auto, cpu, cuda or cuda:N)")
    return device


def pick_precision(name: str, device: torch.device) -> str:
    """`auto` → bf16 on GPUs that run it natively (compute capability ≥ 8.0), fp16 on older GPUs, fp32 on the CPU."""
    if name in QUANTIZED:
        raise ConfigError(
            f"{name}: a quantized noise model runs from exported files only: `streamdet export --model noise --precision {name} "
            "--calibrate FRAMES` and scan with --backend onnxruntime (int8) or tensorrt"
        )
    if name not in PRECISIONS:
        raise ConfigError(f"{name}: unknown precision (choose {', '.join(PRECISIONS)})")
    if name != "auto":
        return name
    if device.type != "cuda":
        return "fp32"
    return gpu_precision(torch.cuda.get_device_capability(device))


def gpu_precision(capability: tuple[int, int]) -> str:
    """The `auto` precision on a GPU of this compute capability: bf16 where it is native, else fp16.

    Not `torch.cuda.is_bf16_supported()`, which is also true where bf16 is only emulated (T4, V100).
    """
    return "bf16" if tuple(capability) >= NATIVE_BF16 else "fp16"


def require_fp8(device: torch.device) -> None:
    """Refuse fp8 unless `device` is a GPU with fp8 tensor cores (compute capability ≥ 8.9)."""
    if device.type != "cuda":
        raise ConfigError(f"fp8 needs an NVIDIA GPU of compute capability 8.9 or newer (Ada, Hopper); {device} is not one: use int8 or fp16")
    capability = tuple(torch.cuda.get_device_capability(device))
    if capability < FP8_CAPABILITY:
        raise ConfigError(
            f"fp8 needs an NVIDIA GPU of compute capability 8.9 or newer (Ada, Hopper); {torch.cuda.get_device_name(device)} "
            f"is {capability[0]}.{capability[1]}: use int8 or fp16"
        )


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for `precision` fp16/bf16 on `device`; nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])
