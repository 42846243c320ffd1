"""C2PA provenance: real files (PNG, JPEG, MP4) signed here with a certificate chain made here, read back and checked."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("c2pa", reason="c2pa-python (the `provenance` extra) is not installed")

from streamdet.errors import ConfigError  # noqa: E402
from streamdet.provenance import MISSING, load_anchors, read_provenance  # noqa: E402

from .credentials import IPTC, make_credentials, sign  # noqa: E402
from .media import make_video, write_image  # noqa: E402

GENERATED = [{"action": "c2pa.created", "digitalSourceType": IPTC + "trainedAlgorithmicMedia"}]
CAPTURED = [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}, {"action": "c2pa.color_adjustments"}]


def noise(index: int, width: int, height: int) -> np.ndarray:
    return np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> dict[str, Path]:
    """An AI-generated PNG, a camera MP4 with a colour edit, a composite JPEG, their unsigned sources and the credentials' anchor."""
    root = tmp_path_factory.mktemp("c2pa")
    credentials = make_credentials("Test Studio", "test signer")
    png, mp4, jpg = write_image(root / "plain.png", noise(1, 64, 48)), make_video(root / "plain.mp4", 6, (64, 48), 6, pattern=noise), write_image(root / "plain.jpg", noise(2, 64, 48))
    files = {
        "plain.png": png, "plain.mp4": mp4,
        "ai.png": sign(png, root / "ai.png", credentials, "TestGenerator 2.1", GENERATED),
        "camera.mp4": sign(mp4, root / "camera.mp4", credentials, "TestCamera 7.0", CAPTURED),
        "composite.jpg": sign(jpg, root / "composite.jpg", credentials, "TestEditor 1.0",
                              [{"action": "c2pa.created", "digitalSourceType": IPTC + "compositeWithTrainedAlgorithmicMedia"}]),
    }
    (root / "anchor.pem").write_text(credentials.anchor)
    files["anchor.pem"] = root / "anchor.pem"
    return files


def test_a_signed_ai_image_declares_ai_and_validates(signed):
    got = read_provenance(signed["ai.png"])
    assert (got.present, got.valid, got.declares_ai) == (True, True, True)
    assert got.generator == "TestGenerator 2.1" and got.signer == "Test Studio (test signer)"
    assert got.source_types == ("trainedAlgorithmicMedia",) and got.actions == ("c2pa.created",)
    assert got.errors == () and got.trusted is False, "valid, but no trust anchor was given"
    assert got.to_dict()["source_types"] == ["trainedAlgorithmicMedia"]
    composite = read_provenance(signed["composite.jpg"])
    assert composite.valid and composite.declares_ai and composite.source_types == ("compositeWithTrainedAlgorithmicMedia",)


def test_a_signed_camera_video_validates_and_declares_no_ai(signed):
    got = read_provenance(signed["camera.mp4"])
    assert (got.present, got.valid, got.declares_ai) == (True, True, False)
    assert got.generator == "TestCamera 7.0" and got.signer == "Test Studio (test signer)"
    assert got.source_types == ("digitalCapture",) and got.actions == ("c2pa.created", "c2pa.color_adjustments")
    assert got.errors == ()


def test_tampering_after_signing_is_flagged(signed, tmp_path):
    video = bytearray(signed["camera.mp4"].read_bytes())
    video[video.find(b"mdat") + 64] ^= 0xFF  # a pixel byte of the first frame
    (tmp_path / "video.mp4").write_bytes(bytes(video))
    got = read_provenance(tmp_path / "video.mp4")
    assert (got.present, got.valid, got.declares_ai) == (True, False, False)
    assert [e.split(":")[0] for e in got.errors] == ["assertion.bmffHash.mismatch"], got.errors

    image = signed["ai.png"].read_bytes()
    at = image.find(b"TestGenerator")  # the claim itself: a forged generator breaks the signature
    (tmp_path / "forged.png").write_bytes(image[:at] + b"HonestCamera!" + image[at + 13 :])
    got = read_provenance(tmp_path / "forged.png")
    assert got.present and got.valid is False and got.generator == "HonestCamera! 2.1"
    assert "claimSignature.mismatch" in [e.split(":")[0] for e in got.errors], got.errors


def test_files_without_a_manifest_are_no_evidence(signed, tmp_path):
    for name in ("plain.png", "plain.mp4"):
        got = read_provenance(signed[name])
        assert got.to_dict() == {"present": False, "valid": None, "declares_ai": None, "generator": None, "signer": None, "trusted": None,
                                 "source_types": [], "actions": [], "errors": [], "note": None}
    make_video(tmp_path / "clip.mkv", 3, (32, 32), 3, pattern=noise)
    got = read_provenance(tmp_path / "clip.mkv")
    assert not got.present and got.note == "C2PA manifests are not read from .mkv files"


def test_trust_anchors_decide_trusted(signed, tmp_path):
    anchors = load_anchors(signed["anchor.pem"])
    assert read_provenance(signed["ai.png"], anchors).trusted is True
    stranger = make_credentials("Someone Else").anchor
    got = read_provenance(signed["ai.png"], stranger)
    assert got.valid and got.trusted is False, "another CA's certificate does not vouch for this signer"
    (tmp_path / "empty.pem").write_text("nothing here")
    with pytest.raises(ConfigError, match="empty.pem: no PEM certificate"):
        load_anchors(tmp_path / "empty.pem")
    with pytest.raises(ConfigError, match="missing.pem: cannot read trust anchors"):
        load_anchors(tmp_path / "missing.pem")


def test_without_the_package_a_note_says_so(signed, monkeypatch):
    monkeypatch.setitem(sys.modules, "c2pa", None)  # what `import c2pa` meets when the extra is not installed
    got = read_provenance(signed["ai.png"])
    assert not got.present and got.note == MISSING and "pip install 'streamdet[provenance]'" in MISSING
