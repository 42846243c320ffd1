"""The generated re-encode benchmark (`tests/reencode_effect.py`, `bench_augment_effect.py`): the failure it models, and the
student trained with re-encoded copies keeping its AP under CRF 35 better."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamdet.config import Config

from .checkpoints import save_adm
from .reencode_effect import COPIES, TEST_IMAGES, TRAIN_IMAGES, clean_and_degraded_ap, effect_config, make_reencode_dataset

pytestmark = [pytest.mark.slow, pytest.mark.training]

SEED = 3


@pytest.mark.usefixtures("one_torch_thread")
def test_reencode_copies_keep_more_ap_under_crf_35_than_clean_training(tmp_path: Path, tiny_config: Config) -> None:
    """The clean-trained student separates clean frames by the cue CRF 35 erases and loses 10+ AP points there; the
    student trained with re-encoded copies loses fewer.

    On the benchmark's five seeds (benchmarks/RESULTS.md) the clean-trained student lost 22-47 points and the one with
    copies lost less on every seed, by 2.6-17.2 points (12.4 on this seed). Its AP under CRF 35 is not asserted to be
    higher as well: on one seed its clean AP was lower and so was its degraded AP.
    """
    data = make_reencode_dataset(tmp_path / "train", TRAIN_IMAGES, SEED)
    test = make_reencode_dataset(tmp_path / "test", TEST_IMAGES, 1000 + SEED)
    adm = save_adm(tmp_path / "adm.pt", effect_config(tiny_config, 0, SEED).adm)
    drops = {}
    for name, copies in (("without", 0), ("with", COPIES)):
        clean, degraded = clean_and_degraded_ap(data, test, effect_config(tiny_config, copies, SEED), adm, tmp_path / f"run-{name}")
        drops[name] = clean - degraded
        if name == "without":
            assert clean > 0.9 and drops[name] > 0.1, (clean, degraded)
    assert drops["with"] < drops["without"], drops
