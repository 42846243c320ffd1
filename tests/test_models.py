"""The numerical contract of docs/design.md §2 against guided-diffusion and torchvision themselves."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from torchvision.models import resnet50
from torchvision.transforms.v2 import functional as TF

from streamdet.config import ADMConfig, load_config
from streamdet.detector import Detector
from streamdet.models.adm import build_adm, build_diffusion, script_util
from streamdet.models.noise import FirstStepNoise
from streamdet.models.student import BODY_LAYERS, load_student
from streamdet.preprocess import preprocess

from .checkpoints import random_adm, random_bn_statistics
from .engines import configured

OFFICIAL_FLAGS = dict(
    image_size=256,
    num_channels=256,
    num_res_blocks=2,
    num_head_channels=64,
    attention_resolutions="32,16,8",
    learn_sigma=True,
    class_cond=False,
    resblock_updown=True,
    use_scale_shift_norm=True,
    use_fp16=False,
    diffusion_steps=1000,
    noise_schedule="linear",
)


def test_official_config_builds_the_official_unet_on_meta():
    flags = script_util.model_and_diffusion_defaults()
    flags.update(OFFICIAL_FLAGS)
    model_args = {k: flags[k] for k in script_util.create_model.__code__.co_varnames[: script_util.create_model.__code__.co_argcount]}
    with torch.device("meta"):
        reference = script_util.create_model(**model_args)
        ours = build_adm(load_config("default").adm)
    ref_shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    our_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert our_shapes == ref_shapes
    assert sum(v.numel() for v in reference.parameters()) == pytest.approx(552.8e6, rel=1e-3)


def test_default_yaml_is_the_official_architecture():
    assert load_config("default").adm == ADMConfig()
    assert {k: getattr(ADMConfig(), k) for k in OFFICIAL_FLAGS} == OFFICIAL_FLAGS


def _frames_in_range(cfg: ADMConfig, n: int = 3) -> torch.Tensor:
    torch.manual_seed(5)
    x = torch.rand(n, 3, cfg.image_size, cfg.image_size) * 2 - 1
    x[:, :, :4] = 1.0  # saturated pixels, where the clamp of x0 bites
    x[:, :, -4:] = -1.0
    return x


@pytest.mark.parametrize("respacing", ["", "ddim20"])
def test_noise_equals_guided_diffusion_p_mean_variance(tiny_config, respacing):
    cfg = tiny_config.adm
    unet = random_adm(cfg)
    x = _frames_in_range(cfg)
    diffusion = build_diffusion(cfg, respacing)
    t = torch.zeros(len(x), dtype=torch.long)
    with torch.no_grad():
        out = diffusion.p_mean_variance(unet, x, t, clip_denoised=True)
        reference = diffusion._predict_eps_from_xstart(x, t, out["pred_xstart"])
        predicted = unet(x, t)[:, :3]
        ours = FirstStepNoise(copy.deepcopy(unet), cfg)(x)
    noise = FirstStepNoise(unet, cfg)
    clamped = ((noise.a * x - noise.b * predicted).abs() > 1).float().mean()
    assert 0.001 < clamped < 0.5, "the test frames must exercise the clamp"
    assert ours.shape == x.shape
    assert torch.linalg.vector_norm(ours - reference) / torch.linalg.vector_norm(reference) < 1e-5
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5 * reference.abs().max().item())


def test_constant_embedding_gives_the_unet_output_and_leaves_the_unet_whole(tiny_config):
    unet = random_adm(tiny_config.adm)
    x = _frames_in_range(tiny_config.adm, 2)
    t = torch.zeros(2, dtype=torch.long)
    with torch.no_grad():
        expected = unet(x, t)[:, :3]
        noise = FirstStepNoise(unet, tiny_config.adm)
        torch.testing.assert_close(noise.predict(x), expected, rtol=1e-5, atol=1e-5)
        later = torch.full((2,), 500, dtype=torch.long)  # the shared UNet still serves other steps (DIRE)
        assert not torch.allclose(unet(x, later), unet(x, t))
    assert any("time_embed" in k for k, _ in unet.named_parameters())


@pytest.mark.slow
def test_noise_forward_is_one_graph_without_host_work(tiny_config):
    """No graph break: the t = 0 embedding is a buffer, so torch.compile(fullgraph=True) and CUDA graphs take the whole forward."""
    noise = FirstStepNoise(random_adm(tiny_config.adm), tiny_config.adm)
    x = _frames_in_range(tiny_config.adm, 2)
    with torch.no_grad():
        explained = torch._dynamo.explain(noise)(x)
        assert explained.graph_break_count == 0 and explained.graph_count == 1
        compiled = torch.compile(noise, fullgraph=True, backend="eager")
        torch.testing.assert_close(compiled(x), noise(x))


def _distildire_torchvision_student() -> torch.nn.Module:
    """A ResNet-50 built the DistilDIRE way: 6-channel conv1 and a 1-logit fc, with random weights and BN stats."""
    torch.manual_seed(7)
    net = resnet50(weights=None, num_classes=1)
    net.conv1 = torch.nn.Conv2d(6, 64, kernel_size=7, stride=2, padding=3, bias=False)
    with torch.no_grad():
        random_bn_statistics(net)
    return net.eval()


@pytest.mark.parametrize("ddp_prefix", [True, False])
def test_distildire_checkpoint_gives_torchvision_logits(tmp_path, ddp_prefix):
    net = _distildire_torchvision_student()
    state = {}
    for key, value in net.state_dict().items():
        top = key.split(".")[0]
        if top in BODY_LAYERS:
            state[f"student_backbone.{key}"] = value
        elif top == "fc":
            state[f"student_head.2.{key.split('.', 1)[1]}"] = value
    prefix = "module." if ddp_prefix else ""
    path = tmp_path / "distil.pth"
    torch.save({"model": {prefix + k: v for k, v in state.items()}, "optimizer": {}, "epoch": 3}, path)
    student = load_student(path)
    torch.manual_seed(8)
    x, eps = torch.rand(2, 3, 64, 64) * 2 - 1, torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = net(torch.cat([x, eps], dim=1)).squeeze(1)
        logits, features = student.forward_features(x, eps)
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    assert features.shape == (2, 2048, 2, 2)


def test_preprocess_matches_torchvision_resize_and_crop():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(90, 160), (160, 90), (64, 64), (33, 47)]]
    out = preprocess(frames, 64)
    assert out.shape == (4, 3, 64, 64) and out.dtype == torch.float32
    for frame, ours in zip(frames, out):
        t = torch.from_numpy(frame).permute(2, 0, 1).float()
        ref = TF.center_crop(TF.resize(t, [64], antialias=True), [64, 64]) / 255 * 2 - 1
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(preprocess(np.full((1, 20, 30, 3), 255, np.uint8), 16), torch.ones(1, 3, 16, 16))
    torch.testing.assert_close(preprocess(np.zeros((20, 30, 3), np.uint8), 16), -torch.ones(1, 3, 16, 16))


def test_preprocess_rejects_wrong_frames():
    with pytest.raises(ValueError, match="uint8 RGB"):
        preprocess(np.zeros((1, 8, 8, 3), np.float32), 8)
    with pytest.raises(ValueError, match="uint8 RGB"):
        preprocess(np.zeros((1, 8, 8), np.uint8), 8)


def test_detector_score_is_sigmoid_of_student_on_frame_and_noise(tiny_config, tiny_adm_ckpt, student_ckpt):
    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt, device="cpu"))
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (5, 72, 96, 3), dtype=np.uint8)
    x = detector.preprocess(frames)
    scores = detector.score(x)
    eps = detector.noise(x)
    with torch.no_grad():
        expected = torch.sigmoid(load_student(student_ckpt)(x, eps))
    assert scores.shape == (5,)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-6)
    assert scores.std() > 0, "a random student gives different scores to different frames"


@pytest.mark.slow
def test_detector_batches_give_the_same_scores(tiny_config, tiny_adm_ckpt, student_ckpt):
    one = Detector.load(configured(dataclasses.replace(tiny_config, batch=1), adm=tiny_adm_ckpt, student=student_ckpt))
    four = Detector.load(configured(dataclasses.replace(tiny_config, batch=4), adm=tiny_adm_ckpt, student=student_ckpt))
    x = one.preprocess(np.random.default_rng(2).integers(0, 256, (6, 64, 64, 3), dtype=np.uint8))
    torch.testing.assert_close(one.score(x), four.score(x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_bf16_autocast_on_the_cpu_is_close_to_fp32_and_really_bf16(tiny_config, tiny_adm_ckpt, student_ckpt):
    """precision bf16 on the CPU runs the models under torch.autocast('cpu', bfloat16), as on a GPU.

    bf16 keeps 8 significant bits (unit roundoff 2^-8 ≈ 0.4%); rounding errors of ~50 layers (ResNet-50; the tiny ADM has
    fewer) add up roughly as sqrt(50) · 0.4% ≈ 3%, so 5% of the largest |value| bounds eps and logits, while fp32
    rounding alone stays near 1e-6: a difference above 0.1% shows that bf16 kernels really ran.
    """
    fp32 = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt, device="cpu", precision="fp32"))
    bf16 = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt, device="cpu", precision="bf16"))
    assert (bf16.device.type, bf16.precision, bf16.backend.precision) == ("cpu", "bf16", "bf16")
    x = fp32.preprocess(np.random.default_rng(4).integers(0, 256, (6, 72, 96, 3), dtype=np.uint8))
    for name in ("noise", "logits"):
        reference, mixed = getattr(fp32, name)(x), getattr(bf16, name)(x)
        assert mixed.dtype == torch.float32 and mixed.shape == reference.shape, name
        scale = reference.abs().max().item()
        difference = (mixed - reference).abs().max().item()
        assert difference <= 0.05 * scale, (name, difference, scale)
        assert difference > 1e-3 * scale, f"{name}: bf16 gave fp32's values to {difference / scale:.1e}: autocast did not run"
    logits = bf16.logits(x)
    assert torch.equal(logits.to(torch.bfloat16).float(), logits), "the student's head ran in bf16: its outputs are bf16 numbers"
    assert not torch.equal(fp32.logits(x).to(torch.bfloat16).float(), fp32.logits(x))
    # sigmoid changes by at most a quarter of the change of its argument
    assert (bf16.score(x) - fp32.score(x)).abs().max() <= 0.25 * (logits - fp32.logits(x)).abs().max() + 1e-7
