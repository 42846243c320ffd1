"""DIRE as a detection method: its classifier against the reference's torchvision ResNet-50 and PIL preprocessing,
its checkpoints in the registry, and `scan` / `eval` with `--method dire` and `both` on generated media."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms
from torchvision.models import resnet50

from streamdet import weights
from streamdet.errors import WeightsError
from streamdet.models.dire import DIREClassifier, load_dire_classifier

from .checkpoints import random_dire_classifier, save_dire_classifier


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: the CPU cores of CI are shared, and oversubscribed OpenMP threads run many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _reference_input(image: np.ndarray) -> torch.Tensor:
    """The DIRE reference's classifier input: PIL image → Resize(256) → CenterCrop(224) → ToTensor → ImageNet Normalize."""
    pipeline = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()])
    tensor = pipeline(Image.fromarray(image))
    return transforms.functional.normalize(tensor, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


@pytest.mark.parametrize("wrapped", [True, False])
def test_dire_checkpoint_gives_the_reference_logits(tmp_path, wrapped):
    net = random_dire_classifier(seed=4)
    reference = resnet50(weights=None, num_classes=1).eval()
    reference.load_state_dict(net.state_dict())
    path = save_dire_classifier(tmp_path / "lsun_adm.pth", net, wrapped=wrapped)
    classifier = load_dire_classifier(path)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = reference(torch.stack([_reference_input(i) for i in images])).squeeze(1)
        logits = classifier(torch.from_numpy(images).permute(0, 3, 1, 2))
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)


def test_dire_classifier_resizes_like_the_reference():
    """Other sizes are resized with antialiasing to short side 256 and rounded to 8 bits, as PIL does (±1 level)."""
    classifier = DIREClassifier().eval()
    rng = np.random.default_rng(1)
    for h, w in [(320, 288), (64, 64)]:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ours = classifier.prepare(torch.from_numpy(image).permute(2, 0, 1)[None])[0]
        assert ours.shape == (3, 224, 224)
        assert (ours - _reference_input(image)).abs().max() <= 1.01 / 255 / 0.224


@pytest.mark.parametrize("name, file", [("dire-lsun-adm", "lsun_adm.pth"), ("dire-imagenet-adm", "imagenet_adm.pth"), ("dire-celebahq-sdv2", "celebahq_sdv2.pth")])
def test_dire_checkpoints_are_manual_downloads(tmp_path, monkeypatch, name, file):
    """Not cached: one line saying where to get the file and where to put it, and no download attempted; cached: used."""
    monkeypatch.setenv("STREAMDET_HOME", str(tmp_path))

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("a manual checkpoint must never be downloaded")

    monkeypatch.setattr(weights.urllib.request, "urlretrieve", no_download)
    where = tmp_path / "weights" / file
    with pytest.raises(WeightsError) as caught:
        weights.resolve(name)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{name}: checkpoint {file} is not cached")
    assert "https://rec.ustc.edu.cn/share/" in message and f"put it at {where}" in message and "--dire" in message
    with pytest.raises(WeightsError, match="cannot be downloaded automatically"):
        weights.fetch_all([name])
    where.parent.mkdir(parents=True)
    save_dire_classifier(where, random_dire_classifier())
    assert weights.resolve(name) == where
    assert isinstance(load_dire_classifier(weights.resolve(name)), DIREClassifier)
