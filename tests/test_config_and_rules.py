"""Config loading, the file verdict rule, and the out-of-memory batch fallback."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch

from streamdet.aggregate import file_score, flagged, verdict
from streamdet.config import Config, builtin_configs, load_config, with_overrides
from streamdet.runtime import AdaptiveBatch
from streamdet.errors import ConfigError, StreamdetError


def test_config_file_overrides_defaults_and_options_override_the_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("batch: 3\nthreshold: 0.7\nsampling:\n  mode: every\n  every: 5\n")
    cfg = load_config(path, {"threshold": 0.9})
    assert (cfg.batch, cfg.threshold, cfg.sampling.mode, cfg.sampling.every) == (3, 0.9, "every", 5)
    assert cfg.adm == Config().adm and cfg.source == str(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("batchsize: 3\n", "unknown setting 'batchsize'"),
        ("adm:\n  channels: 3\n", "unknown setting 'adm.channels'"),
        ("source: mine\n", "unknown setting 'source'"),
        ("precision: fp64\n", "precision: expected one of 'auto', 'fp32', 'fp16', 'bf16', 'int8' or 'fp8', got str 'fp64'"),
        ("threshold: 2\n", "threshold: must be less than or equal to 1, not 2"),
        ("threshold: '0.7'\n", "threshold: expected a number, got str '0.7'"),
        ("channels_last: 'no'\n", "channels_last: expected true or false, got str 'no'"),
        ("batch: 0\n", "batch: must be greater than or equal to 1, not 0"),
        ("batch: 2.5\n", "batch: expected a whole number, got float 2.5"),
        ("batch: true\n", "batch: expected a whole number, got bool True"),
        ("top_fraction: 0\n", "top_fraction: must be greater than 0, not 0"),
        ("sampling:\n  mode: often\n", "sampling.mode: expected one of 'uniform'"),
        ("train:\n  epochs: '3'\n", "train.epochs: expected a whole number, got str '3'"),
        ("train:\n  jpeg_min_quality: 90\n  jpeg_max_quality: 80\n", "train: jpeg_min_quality 90 is above jpeg_max_quality 80"),
        ("adm:\n  use_fp16: true\n", "adm.use_fp16: true is not supported"),
        ("adm:\n  attention_resolutions: 16\n", "adm.attention_resolutions: expected a string, got int 16"),
        ("adm: 3\n", "adm: expected a mapping of settings, got int 3"),
        ("- batch\n", "top level: expected a mapping of settings, got list"),
        ("batch: [1\n", "cannot read config"),
    ],
)
def test_bad_config_files_are_one_line_errors(tmp_path, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ") and problem in str(info.value) and "\n" not in str(info.value)


def test_fp16_in_a_config_points_to_the_precision_option(tmp_path):
    path = tmp_path / "half.yaml"
    path.write_text("adm:\n  use_fp16: true\n")
    with pytest.raises(ConfigError, match=r"adm.use_fp16: .*--precision fp16\|bf16"):
        load_config(path)


def test_whole_numbers_are_accepted_for_real_settings(tmp_path):
    path = tmp_path / "ints.yaml"
    path.write_text("threshold: 1\ntrain:\n  lr: 1\n")
    cfg = load_config(path)
    assert cfg.threshold == 1.0 and isinstance(cfg.threshold, float) and cfg.train.lr == 1.0


def test_built_in_configs_are_found_and_valid():
    assert {"default", "celebahq", "tiny"} <= set(builtin_configs())
    assert load_config("default").adm == Config().adm
    assert load_config("celebahq").weights.student == "distildire-celebahq"
    assert load_config("tiny").adm.image_size == 64


def test_replacing_a_setting_is_validated_and_keeps_the_dataclass_api():
    cfg = load_config("tiny")
    assert dataclasses.asdict(cfg.adm)["image_size"] == 64
    assert dataclasses.replace(cfg.adm, image_size=32).image_size == 32
    with pytest.raises(ConfigError, match="^invalid setting: train.dire_steps: must be greater than or equal to 1, not 0$"):
        dataclasses.replace(cfg.train, dire_steps=0)
    with pytest.raises(ConfigError, match="^invalid setting: channels_last: expected true or false, got str 'no'$"):
        dataclasses.replace(cfg, channels_last="no")


def test_unknown_config_name_lists_the_built_in_ones():
    with pytest.raises(ConfigError, match="nosuch: no such config file or built-in config.*default.*tiny"):
        load_config("nosuch")


def test_overrides_are_validated():
    with pytest.raises(ConfigError, match="^option batch: must be greater than or equal to 1, not 0$"):
        with_overrides(Config(), batch=0)
    with pytest.raises(ConfigError, match="^option precision: expected one of"):
        with_overrides(Config(), precision="fp64")
    with pytest.raises(ConfigError, match="^--frames: must be greater than or equal to 1, not 0$"):
        load_config("tiny", {"sampling.frames": 0}, {"sampling.frames": "--frames"})
    assert with_overrides(Config(), device=torch.device("cpu")).device == "cpu"


def test_file_score_is_the_mean_of_the_top_quarter():
    assert file_score([0.9]) == 0.9
    assert file_score([0.1, 0.2, 0.9, 0.8, 0.3, 0.4, 0.1, 0.2]) == pytest.approx((0.9 + 0.8) / 2)
    assert file_score([0.1, 0.2, 0.3], top_fraction=1.0) == pytest.approx(0.2)
    short_fake_segment = [0.05] * 12 + [0.95] * 4
    assert verdict(file_score(short_fake_segment)) == "FAKE"
    assert verdict(sum(short_fake_segment) / 16) == "REAL", "a plain mean would hide the segment"
    one_noisy_frame = [0.05] * 15 + [0.99]
    assert verdict(file_score(one_noisy_frame)) == "REAL", "one noisy frame must not flag a video"
    assert flagged(one_noisy_frame) == 1
    with pytest.raises(ValueError):
        file_score([])


def test_verdict_threshold_is_inclusive():
    assert verdict(0.5, 0.5) == "FAKE" and verdict(0.4999, 0.5) == "REAL"


def test_out_of_memory_halves_the_batch_once_per_size_and_goes_on(caplog):
    calls: list[int] = []

    def model(x: torch.Tensor) -> torch.Tensor:
        calls.append(len(x))
        if len(x) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return x * 2

    batch = AdaptiveBatch(16)
    x = torch.arange(20.0)
    with caplog.at_level(logging.WARNING, logger="streamdet"):
        out = batch.run(model, x)
        torch.testing.assert_close(out, x * 2)
        assert batch.size == 2
        assert calls[:3] == [16, 8, 4]
        warnings = [r.getMessage() for r in caplog.records]
        assert warnings == [
            "CUDA out of memory at batch size 16; continuing with batch size 8",
            "CUDA out of memory at batch size 8; continuing with batch size 4",
            "CUDA out of memory at batch size 4; continuing with batch size 2",
        ]
        caplog.clear()
        torch.testing.assert_close(batch.run(model, x), x * 2)
        assert caplog.records == [], "a size that failed is not tried again"


def test_out_of_memory_at_batch_one_is_a_clear_error():
    def model(x: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(StreamdetError, match="out of memory at batch size 1"):
        AdaptiveBatch(1).run(model, torch.ones(2))


def test_version_needs_no_command():
    from typer.testing import CliRunner

    from streamdet import __version__
    from streamdet.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"streamdet {__version__}"


def test_bad_config_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    from typer.testing import CliRunner

    from streamdet.cli import app

    path = tmp_path / "bad.yaml"
    path.write_text("channels_last: 'no'\n")
    result = CliRunner().invoke(app, ["scan", str(tmp_path), "--config", str(path), "--quiet"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].endswith(f"{path}: channels_last: expected true or false, got str 'no'")
