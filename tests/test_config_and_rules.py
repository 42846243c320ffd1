"""Config loading, the file verdict rule, and the out-of-memory batch fallback."""

from __future__ import annotations

import logging

import pytest
import torch

from streamdet.aggregate import file_score, flagged, verdict
from streamdet.runtime import AdaptiveBatch
from streamdet.config import Config, load_config, with_overrides
from streamdet.errors import ConfigError, StreamdetError


def test_config_file_overrides_defaults_and_options_override_the_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("batch: 3\nthreshold: 0.7\nsampling:\n  mode: every\n  every: 5\n")
    cfg = load_config(path, threshold=0.9)
    assert (cfg.batch, cfg.threshold, cfg.sampling.mode, cfg.sampling.every) == (3, 0.9, "every", 5)
    assert cfg.adm == Config().adm and cfg.source == str(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("batchsize: 3\n", "unknown setting 'batchsize'"),
        ("adm:\n  channels: 3\n", "unknown setting 'adm.channels'"),
        ("precision: fp8\n", "precision must be one of"),
        ("threshold: 2\n", "threshold must lie in [0, 1]"),
        ("adm: 3\n", "'adm.' must be a mapping"),
        ("batch: [1\n", "cannot read config"),
    ],
)
def test_bad_config_files_are_one_line_errors(tmp_path, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(str(path)) and problem in str(info.value) and "\n" not in str(info.value)


def test_unknown_config_name_lists_the_built_in_ones():
    with pytest.raises(ConfigError, match="nosuch: no such config file or built-in config.*default.*tiny"):
        load_config("nosuch")


def test_overrides_are_validated():
    with pytest.raises(ConfigError, match="batch must be at least 1"):
        with_overrides(Config(), batch=0)


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
