"""`streamdet calibrate`: the threshold that keeps the false-positive rate on the user's real media at most a target.

Rule: the real inputs are scanned as `scan` scans them (file score = top-fraction mean), and with n of them at
most k = floor(fpr · n) may reach the threshold. The threshold is the midpoint between the k-th and the
(k+1)-th highest real score (just above the highest score when k = 0), so exactly the k highest are flagged
and neither neighbour sits on the edge. Rates are reported with a 95% Wilson score interval, which stays
inside [0, 1] and is honest at 0 or n hits, where the normal approximation collapses to a width of 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import yaml

from .config import find_config, parse_config
from .errors import ConfigError, MediaError
from .files import StrPath, write_text
from .pipeline import FileResult, scan

if TYPE_CHECKING:
    from .detector import Detector

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile: a two-sided 95% interval


@dataclass(frozen=True)
class Rate:
    """`hits` of `total` inputs, the rate and its 95% Wilson interval."""

    hits: int
    total: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.hits / self.total

    def __str__(self) -> str:
        return f"{self.hits}/{self.total} = {self.rate:.4f} (95% Wilson interval {self.low:.4f} to {self.high:.4f})"


def wilson(hits: int, total: int, z: float = Z95) -> Rate:
    """The Wilson score interval of a binomial proportion (closed form)."""
    if total < 1 or not 0 <= hits <= total:
        raise ValueError(f"need 0 <= hits <= total and total >= 1, got {hits}/{total}")
    p = hits / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return Rate(hits, total, max(0.0, centre - half), min(1.0, centre + half))


def threshold_for_fpr(scores: list[float], fpr: float) -> float:
    """A threshold that at most floor(fpr · n) of these real scores reach (see the module's rule)."""
    ranked = sorted(scores, reverse=True)
    allowed = math.floor(fpr * len(ranked) + 1e-9)
    if allowed >= len(ranked):
        return ranked[-1]
    below = ranked[allowed]
    if allowed > 0 and ranked[allowed - 1] > below:
        return (ranked[allowed - 1] + below) / 2
    above = math.nextafter(below, math.inf)
    if above > 1.0:
        raise MediaError(f"{len(ranked) - allowed} real inputs score 1.0: no threshold in [0, 1] keeps the false-positive rate at {fpr}")
    return above


@dataclass
class Calibration:
    """The threshold found, the rates it gives on the real (and fake) inputs, and every input's score."""

    threshold: float
    fpr: float
    real: Rate
    fake: Rate | None
    scores: dict[str, float]


def _scores(detector: "Detector", folder: Path, what: str, crops: str | None, on_result: Callable[[FileResult], None] | None) -> dict[str, float]:
    """Every input's file score; any input that cannot be scored stops the calibration (no partial statistics)."""
    if not folder.exists():
        raise MediaError(f"{folder}: no such {what} folder or file")
    results = scan(detector, [folder], crops=crops, on_result=on_result)
    failed = [r for r in results if r.status == "error"]
    if failed:
        raise MediaError(f"{failed[0].error} ({len(failed)} of the {len(results)} {what} inputs could not be scored; calibrating without them would be silently partial)")
    if not results:
        raise MediaError(f"{folder}: no images or videos found in the {what} folder")
    return {r.path: r.score for r in results}


def calibrate(
    detector: "Detector",
    real: StrPath,
    fpr: float,
    fake: StrPath | None = None,
    crops: str | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> Calibration:
    """Scan the real (and fake) media and pick the threshold for a false-positive rate of at most `fpr`."""
    if not 0.0 <= fpr < 1.0:
        raise ConfigError(f"--fpr {fpr}: must lie in [0, 1)")
    real_scores = _scores(detector, Path(real), "real", crops, on_result)
    fake_scores = _scores(detector, Path(fake), "fake", crops, on_result) if fake is not None else {}
    threshold = threshold_for_fpr(list(real_scores.values()), fpr)
    real_rate = wilson(sum(s >= threshold for s in real_scores.values()), len(real_scores))
    fake_rate = wilson(sum(s >= threshold for s in fake_scores.values()), len(fake_scores)) if fake_scores else None
    return Calibration(threshold, fpr, real_rate, fake_rate, {**real_scores, **fake_scores})


def write_config(calibration: Calibration, base: str | None, out: StrPath, crops: str | None = None) -> None:
    """The base config's own settings plus the threshold (and crops, if chosen), checked loadable, written atomically."""
    data: dict[str, Any] = {}
    if base is not None:
        path = find_config(base)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read config: {str(exc).splitlines()[0]}") from None
    data["threshold"] = calibration.threshold
    if crops is not None:
        data["crops"] = crops
    out = Path(out)
    parse_config(data, str(out))
    lines = [
        f"# streamdet calibrate: threshold for a false-positive rate of at most {calibration.fpr:g} on real media",
        f"# base config: {base or '<defaults>'}",
        f"# false positives on the real inputs: {calibration.real}",
    ]
    if calibration.fake is not None:
        lines.append(f"# true positives on the fake inputs: {calibration.fake}")
    write_text(out, "\n".join(lines) + "\n" + yaml.safe_dump(data, sort_keys=False), fsync=True)
