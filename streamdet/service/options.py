"""A request's scan options (as `scan`'s flags: sampling, crops, uncertain band, threshold, method) → the job's settings.

Options are validated by name and type here, then applied to the server's settings object with
`streamdet.config.with_overrides`, so a job's settings are checked by the same rules as a command line's and
a file scanned with the same options gets the same settings (and verdict) as `scan` gives it.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..aggregate import parse_band
from ..config import Config, sampling_choice, with_overrides
from ..errors import ConfigError


class OptionError(Exception):
    """Options that cannot be used: the message is one line naming the option and the problem."""


class ScanOptions(BaseModel):
    """The options a client may give, with `scan`'s names (`all_frames` for `--all-frames`)."""

    model_config = ConfigDict(extra="forbid")

    frames: int | None = Field(default=None, ge=1)
    every: int | None = Field(default=None, ge=1)
    fps: float | None = Field(default=None, gt=0.0)
    keyframes: bool = False
    all_frames: bool = False
    snap: Literal["none", "keyframes"] | None = None
    crops: Literal["center", "cover", "faces"] | None = None
    uncertain: str | None = Field(default=None, description="LOW:HIGH")
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    method: str | None = None
    callback: str | None = Field(default=None, description="URL POSTed to when the job ends (from the operator's allow-list)")


KNOWN = tuple(ScanOptions.model_fields)


def parse_options(values: Mapping[str, Any]) -> ScanOptions:
    """Options from form fields or a JSON object; unknown names and bad values are one-line `OptionError`s."""
    unknown = [name for name in values if name not in KNOWN]
    if unknown:
        close = difflib.get_close_matches(unknown[0], KNOWN, n=1)
        hint = f", did you mean {close[0]!r}?" if close else f" (options: {', '.join(KNOWN)})"
        raise OptionError(f"unknown option {unknown[0]!r}{hint}")
    try:
        return ScanOptions.model_validate(dict(values))
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        name = ".".join(str(part) for part in error["loc"])
        raise OptionError(f"option {name}: {error['msg'].replace('Input should be ', 'must be ')}, not {error.get('input')!r}") from None


def job_settings(base: Config, options: ScanOptions) -> Config:
    """The server's settings with the job's options applied and validated again (`OptionError` on a bad combination)."""
    overrides: dict[str, Any] = {"crops": options.crops, "threshold": options.threshold, "sampling.snap": options.snap}
    asked = {
        "uniform": ("frames", options.frames), "every": ("every", options.every), "fps": ("fps", options.fps),
        "keyframes": ("keyframes", options.keyframes), "all": ("all_frames", options.all_frames),
    }
    try:
        overrides.update(sampling_choice(asked, "options "))
    except ConfigError as exc:
        raise OptionError(str(exc)) from None
    if options.uncertain is not None:
        try:
            overrides["uncertain"] = list(parse_band(options.uncertain, "option uncertain"))
        except ValueError as exc:
            raise OptionError(str(exc)) from None
    if options.method is not None and options.method != base.method:
        raise OptionError(f"option method: this server runs {base.method!r}, not {options.method!r} (its models are loaded for that method)")
    flags = {key: f"option {key.rsplit('.', 1)[-1]}" for key in overrides}
    try:
        return with_overrides(base, overrides, flags)
    except ConfigError as exc:
        raise OptionError(str(exc)) from None

