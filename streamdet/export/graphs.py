"""The two exported graphs, with fp32 inputs and outputs at any precision inside.

`noise`: FirstStepNoise itself (x → eps: UNet at t = 0 with its constant timestep embedding, then the
clamp/eps arithmetic in fp32). `student`: (x, eps) → logit.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..device import DTYPES as DEVICE_DTYPES
from ..models.noise import FirstStepNoise
from ..models.student import Student

DTYPES = {**DEVICE_DTYPES, "int8": torch.float32, "fp8": torch.float32}  # quantized from the fp32 graph


@dataclass
class ExportGraph:
    """A module ready for export, with the names of its inputs and output (all N×… float32)."""

    model: str
    module: nn.Module
    inputs: tuple[str, ...]
    output: str

    def example(self, batch: int, size: int) -> tuple[torch.Tensor, ...]:
        """Inputs of the right shape and range for tracing."""
        generator = torch.Generator().manual_seed(0)
        return tuple(torch.rand(batch, 3, size, size, generator=generator) * 2 - 1 for _ in self.inputs)

    def interface(self, size: int) -> tuple[list[dict], list[dict]]:
        """Names, shapes (batch symbolic) and dtypes of the inputs and the output, for the metadata."""
        image = ["batch", 3, size, size]
        inputs = [{"name": name, "shape": image, "dtype": "float32"} for name in self.inputs]
        shape = image if self.model == "noise" else ["batch"]
        return inputs, [{"name": self.output, "shape": shape, "dtype": "float32"}]


def _plain(module: nn.Module) -> nn.Module:
    """A CPU fp32 copy in the default memory layout, in eval mode, without gradients."""
    return copy.deepcopy(module).cpu().float().to(memory_format=torch.contiguous_format).eval().requires_grad_(False)


def _convolutions_to(dtype: torch.dtype) -> Callable[[nn.Module], None]:
    def convert(module: nn.Module) -> None:
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            module.to(dtype)

    return convert


def noise_graph(noise: FirstStepNoise, precision: str) -> ExportGraph:
    """FirstStepNoise at `precision` as guided-diffusion's own `use_fp16` does it: convolutions of the
    input, middle and output blocks in fp16/bf16; normalisation, timestep MLP, softmax, final layer and the
    eps arithmetic in fp32."""
    module = _plain(noise)
    dtype = DTYPES[precision]
    if dtype != torch.float32:
        unet = module.unet
        for part in (unet.input_blocks, unet.middle_block, unet.output_blocks):
            part.apply(_convolutions_to(dtype))
        unet.dtype = dtype
    return ExportGraph("noise", module, ("x",), "eps")


class _StudentAt(nn.Module):
    """The student run wholly in `dtype` behind an fp32 interface."""

    def __init__(self, student: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.student = student.to(dtype)
        self.dtype = dtype

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return self.student(x.to(self.dtype), eps.to(self.dtype)).float()


def student_graph(student: Student, precision: str) -> ExportGraph:
    """The student as (x, eps) → logit, wholly at fp16/bf16 when asked (int8 is quantized later from fp32)."""
    module = _plain(student)
    dtype = DTYPES[precision]
    if dtype != torch.float32:
        module = _StudentAt(module, dtype).eval()
    return ExportGraph("student", module, ("x", "eps"), "logit")
