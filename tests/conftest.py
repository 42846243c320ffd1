from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from streamdet.config import Config, load_config

from .checkpoints import random_student, save_adm, save_student


@pytest.fixture(scope="session", autouse=True)
def streamdet_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tests' own cache folder (weights, remembered checksums), never the user's."""
    home = tmp_path_factory.mktemp("streamdet-home")
    before = os.environ.get("STREAMDET_HOME")
    os.environ["STREAMDET_HOME"] = str(home)
    yield home
    if before is None:
        os.environ.pop("STREAMDET_HOME", None)
    else:
        os.environ["STREAMDET_HOME"] = before


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for a module's tests: CI's cores are shared, and oversubscribed OpenMP threads run many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_config() -> Config:
    return load_config("tiny")


@pytest.fixture(scope="session")
def ckpt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("checkpoints")


@pytest.fixture(scope="session")
def tiny_adm_ckpt(ckpt_dir: Path, tiny_config: Config) -> Path:
    return save_adm(ckpt_dir / "tiny_adm.pt", tiny_config.adm)


@pytest.fixture(scope="session")
def student_ckpt(ckpt_dir: Path) -> Path:
    return save_student(ckpt_dir / "student.pth", random_student(seed=1))


@pytest.fixture(scope="session")
def fake_student_ckpt(ckpt_dir: Path) -> Path:
    """A student that calls every frame fake (P = sigmoid(6) ≈ 0.998)."""
    return save_student(ckpt_dir / "student_fake.pth", random_student(seed=2, bias=6.0))


@pytest.fixture(scope="session")
def real_student_ckpt(ckpt_dir: Path) -> Path:
    """A student that calls every frame real (P = sigmoid(-6) ≈ 0.0025)."""
    return save_student(ckpt_dir / "student_real.pth", random_student(seed=3, bias=-6.0), ddp_prefix=False)


@pytest.fixture(scope="session")
def trace_student_ckpt(tmp_path_factory: pytest.TempPathFactory, tiny_config: Config, tiny_adm_ckpt: Path) -> Path:
    """A student trained (24 steps of the project's trainer) to find the planted trace of `tests/traces.py`, for the tiny ADM."""
    from .traces import train_trace_student

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # CI's cores are shared: oversubscribed threads run many times slower
    try:
        return train_trace_student(tmp_path_factory.mktemp("trace-student"), tiny_config, tiny_adm_ckpt)
    finally:
        torch.set_num_threads(before)
