"""Do CUDA scans say what CPU scans say? The same files, the same random models, scanned on each device.

The CPU reference is eager fp32 with rgb24 frames from the CPU decoder. On CUDA the engine sends YUV planes
and converts them on the device, uploads through pinned buffers, and runs in the precision asked. For each
CUDA row the table gives the largest |ΔP| of any frame against the CPU reference and whether every file's
verdict agrees. Tiny config by default (random weights in the official formats, so the ΔP are numerical drift,
not accuracy); runs in well under a minute on one GPU.

    python benchmarks/gpu_parity.py                      # on a machine with a CUDA GPU
    python benchmarks/gpu_parity.py --config default     # the full-size models (slower on the CPU side)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamdet.config import Config, load_config, with_overrides  # noqa: E402
from streamdet.detector import Detector  # noqa: E402
from streamdet.engine import Engine  # noqa: E402
from streamdet.results import FileResult  # noqa: E402
from tests.checkpoints import random_dire_classifier, random_student, save_adm, save_dire_classifier, save_student, spread_head  # noqa: E402
from tests.media import make_video, write_image  # noqa: E402

ROWS = [  # (method, precision, crops) of each CUDA row
    ("distildire", "fp32", "center"),
    ("distildire", "bf16", "center"),
    ("distildire", "fp16", "center"),
    ("distildire", "fp32", "cover"),
    ("distildire", "bf16", "cover"),
    ("dire", "fp32", "center"),
]


def noise(index: int, width: int, height: int) -> np.ndarray:
    """Uniform noise, new per frame: random models' scores spread around 0.5 on it instead of saturating."""
    return np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)


def media(folder: Path) -> list[Path]:
    """A landscape and a portrait H.264 clip and a 4:3 PNG of noise."""
    return [
        make_video(folder / "wide.mp4", 24, (640, 360), fps=24, pattern=noise),
        make_video(folder / "tall.mp4", 24, (360, 640), fps=24, pattern=noise),
        write_image(folder / "still.png", noise(99, 640, 480)),
    ]


def spread(settings: Config, method: str, head: torch.nn.Linear, images: np.ndarray) -> None:
    """Spread a random head's logits on `images` around 0 (`spread_head`), as the CPU fp32 pipeline computes them."""
    det = Detector.load(with_overrides(settings, {"device": "cpu", "precision": "fp32", "method": method}))
    spread_head(head, det.logits(det.preprocess(images), method))


def scan(settings: Config, paths: list[Path]) -> list[FileResult]:
    results = Engine.load(settings).scan(paths)
    bad = [r for r in results if r.status != "ok"]
    if bad:
        sys.exit(f"{bad[0].path}: {bad[0].error}")
    return results


def drift(a: list[FileResult], b: list[FileResult]) -> tuple[int, float, bool]:
    """Frames compared, the largest |ΔP| over them, and whether every file's verdict is the same."""
    deltas = []
    for x, y in zip(a, b, strict=True):
        if [f.index for f in x.frames] != [f.index for f in y.frames]:
            sys.exit(f"{x.path}: the two scans scored different frames")
        deltas += [abs(f.score - g.score) for f, g in zip(x.frames, y.frames)]
    return len(deltas), max(deltas), all(x.verdict == y.verdict for x, y in zip(a, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--device", default="cuda", help="the device compared with the CPU (cpu checks the script itself)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_parity.py: no CUDA GPU here")
    with tempfile.TemporaryDirectory(prefix="streamdet-parity-") as tmp:
        root = Path(tmp)
        paths = media(root)
        base = load_config(args.config)
        student, dire = random_student(seed=1), random_dire_classifier(seed=2)
        files = {"weights.adm": save_adm(root / "adm.pt", base.adm), "weights.student": root / "student.pth", "weights.dire": root / "dire.pth"}
        save_student(files["weights.student"], student)
        save_dire_classifier(files["weights.dire"], dire)
        base = with_overrides(base, {**{k: str(v) for k, v in files.items()}, "sampling.mode": "all", "train.dire_steps": 4})
        images = np.stack([noise(i, 320, 240) for i in range(8)])
        spread(base, "distildire", student.student_head[2], images)
        spread(base, "dire", dire.fc, images)
        save_student(files["weights.student"], student)
        save_dire_classifier(files["weights.dire"], dire)
        name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "CPU"
        print(f"{args.device} ({name}), torch {torch.__version__}; config {args.config}; "
              f"{', '.join(p.name for p in paths)}, every frame; CPU reference: eager fp32, rgb24")
        print()
        print("| method | precision | crops | frames | max abs ΔP vs CPU fp32 | verdicts agree |")
        print("| --- | --- | --- | ---: | ---: | --- |")
        reference: dict[tuple[str, str], list[FileResult]] = {}
        for method, precision, crops in ROWS:
            settings = with_overrides(base, {"method": method, "crops": crops})
            key = (method, crops)
            if key not in reference:
                reference[key] = scan(with_overrides(settings, {"device": "cpu", "precision": "fp32"}), paths)
            on_gpu = scan(with_overrides(settings, {"device": args.device, "precision": precision}), paths)
            n, worst, same = drift(reference[key], on_gpu)
            print(f"| {method} | {precision} | {crops} | {n} | {worst:.2e} | {'yes' if same else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
