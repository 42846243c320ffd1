"""The MSE-clipped post-training baseline of LSQ quantization, and the start from the more faithful of the two."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamdet.compress import quantize
from streamdet.compress.finetune import Fidelity
from streamdet.models.compressed import LSQ

from .checkpoints import random_student

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mse(x: np.ndarray, step: float, lo: int, hi: int) -> float:
    return float(np.mean((np.clip(np.round(x / step), lo, hi) * step - x) ** 2))


@pytest.mark.parametrize("bits,signed", [(4, True), (3, True), (4, False), (8, True)])
def test_mse_step_is_near_the_best_clipping_a_fine_independent_search_finds(bits, signed):
    rng = np.random.default_rng(bits)
    x = rng.standard_t(4, size=(3, 4000)).astype(np.float32)  # heavy tails: clipping pays off
    x = x if signed else np.abs(x)
    quantizer = LSQ(bits, signed, channels=3)
    got = quantize.mse_step(torch.from_numpy(x), quantizer).numpy()
    for row, step in zip(x, got):
        top = np.abs(row).max()
        finest = min(_mse(row, a * top / quantizer.hi, quantizer.lo, quantizer.hi) for a in np.linspace(0.001, 1, 4000))
        lsq = _mse(row, 2 * np.abs(row).mean() / np.sqrt(quantizer.hi), quantizer.lo, quantizer.hi)
        assert _mse(row, float(step), quantizer.lo, quantizer.hi) <= 1.05 * finest
        assert _mse(row, float(step), quantizer.lo, quantizer.hi) <= 1.01 * lsq


@pytest.mark.slow
def test_initialise_starts_from_the_more_faithful_of_lsq_and_mse_ptq():
    reference = random_student(seed=9)
    x = torch.rand(8, 3, 64, 64) * 2 - 1
    eps = torch.randn_like(x)
    with torch.no_grad():
        before = torch.sigmoid(reference(x, eps)).tolist()

    def fidelity(model: torch.nn.Module) -> Fidelity:
        with torch.no_grad():
            return Fidelity.between(before, torch.sigmoid(model.eval()(x, eps)).tolist())

    import copy

    student = copy.deepcopy(reference)
    layout, inputs = quantize.plan(student, 4, 8, (x[:4], eps[:4]))
    start = quantize.initialise(student, layout, inputs, fidelity)
    means = {k: start[k]["mean"] for k in ("lsq", "mse_ptq")}
    assert start["chosen"] == min(means, key=means.get) and start["lsq"]["n"] == 8
    assert fidelity(student).mean == pytest.approx(min(means.values()), abs=1e-6), "the student is left in the chosen start"
