"""`streamdet frames`: a frame dataset from labelled videos (SRC/real/…, SRC/fake/<generator>/…).

Frames are sampled as `scan` samples them and written as PNG under the same relative folders; the
manifest records the video, frame index and time of every frame, and a train/val split made per
video, so that no video has frames on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import DatasetError, MediaError
from ..video import Sampling, expand_inputs, iter_frames
from .dataset import LABELS, Item, generator_of, split_items, write_manifest
from .writers import write_png


@dataclass
class FramesReport:
    """What `frames` wrote: videos read, frames written, videos per split, and the inputs that failed."""

    videos: int = 0
    frames: int = 0
    train_videos: int = 0
    val_videos: int = 0
    failed: list[str] = field(default_factory=list)


def find_videos(src: Path) -> list[tuple[int, Path]]:
    """(label, path) of every video or image under `src/real` and `src/fake`, in sorted order."""
    if not any((src / name).is_dir() for name in LABELS):
        raise DatasetError(f"{src}: needs real/ and fake/ folders of videos (fake/<generator>/ for each generator)")
    found = []
    for name, label in LABELS.items():
        if (src / name).is_dir():
            found += [(label, Path(i.path)) for i in expand_inputs([src / name]) if i.kind != "error"]
    if not found:
        raise DatasetError(f"{src}: no videos under real/ or fake/")
    return found


def build_frames(
    src: str | Path,
    dst: str | Path,
    sampling: Sampling,
    val_fraction: float = 0.1,
    seed: int = 3407,
    on_video: Callable[[int, int], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> FramesReport:
    """Decode the sampled frames of every labelled video in `src` into the frame dataset `dst`, with its manifest."""
    src, dst = Path(src), Path(dst)
    videos = find_videos(src)
    report = FramesReport()
    items: list[Item] = []
    for done, (label, path) in enumerate(videos, 1):
        relative = path.relative_to(src)
        names: set[str] = set()
        try:
            for frame in iter_frames(path, sampling):
                name = f"{relative.name}.{frame.index:06d}.png"
                while name in names:
                    name = f"{Path(name).stem}+.png"
                names.add(name)
                image = relative.parent / name
                write_png(dst / image, frame.image)
                items.append(Item(image.as_posix(), label, generator_of(relative.parts), relative.as_posix(), frame.index, round(frame.time, 6)))
        except MediaError as exc:
            report.failed.append(str(exc))
            if on_error is not None:
                on_error(str(exc))
        if names:
            report.videos += 1
            report.frames += len(names)
        if on_video is not None:
            on_video(done, len(videos))
    if not items:
        raise DatasetError(f"{src}: no frame could be decoded from any video")
    items = split_items(items, val_fraction, seed)
    report.val_videos = len({i.video for i in items if i.split == "val"})
    report.train_videos = len({i.video for i in items if i.split == "train"})
    write_manifest(dst, items)
    return report
