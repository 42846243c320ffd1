"""Host → device transfer of frames and device → host read-back of scores, without stalling the host on a GPU.

On CUDA, frames are copied into pinned host buffers that are allocated once per slot and reused (grown
when a batch needs more), and sent on a side stream that the compute stream waits for; the host goes
on preparing the next batch meanwhile. Scores come back through a pinned tensor and an event, so the
host waits only when it reads them. On the CPU both are plain, synchronous tensors.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch


class FrameUploader:
    """uint8 H×W×3 frames → tensors on the device, through `slots` reusable pinned buffers (double buffering)."""

    def __init__(self, device: torch.device, slots: int = 2) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.stream = torch.cuda.Stream(device) if self.cuda else None
        self.buffers: list[torch.Tensor | None] = [None] * slots
        self.copied: list[torch.cuda.Event | None] = [None] * slots
        self.slot = 0

    def upload(self, frames: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """The frames as uint8 tensors on the device (on CUDA: ready for the current stream, copied asynchronously)."""
        if not self.cuda:
            return [torch.from_numpy(np.ascontiguousarray(frame)) for frame in frames]
        slot, self.slot = self.slot, (self.slot + 1) % len(self.buffers)
        if self.copied[slot] is not None:
            self.copied[slot].synchronize()  # the last copy out of this buffer is done; the host may refill it
        total = sum(frame.nbytes for frame in frames)
        buffer = self.buffers[slot]
        if buffer is None or buffer.numel() < total:
            buffer = self.buffers[slot] = torch.empty(max(total, 2 * (0 if buffer is None else buffer.numel())), dtype=torch.uint8, pin_memory=True)
        host = buffer.numpy()
        spans = []
        offset = 0
        for frame in frames:
            np.copyto(host[offset : offset + frame.nbytes].reshape(frame.shape), frame)
            spans.append((offset, frame.shape))
            offset += frame.nbytes
        compute = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(compute)  # the device memory the copy writes into may have just been freed by compute
        with torch.cuda.stream(self.stream):
            flat = buffer[:total].to(self.device, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.stream)
        self.copied[slot] = done
        compute.wait_event(done)
        flat.record_stream(compute)
        return [flat[start : start + int(np.prod(shape))].view(shape) for start, shape in spans]


class PendingScores:
    """Scores on their way to the host: `result()` waits for them (only them) and returns floats.

    `scored_by` names the model that scored each frame where a cascade mixes two (else None); `methods` has
    every method's scores where a detector runs several (else None), read with `by_method()`."""

    def __init__(self, scores: torch.Tensor, scored_by: list[str] | None = None, methods: Mapping[str, torch.Tensor] | None = None) -> None:
        self.scored_by = scored_by
        self.event = None
        names = list(methods or {})
        stacked = torch.stack([scores, *(methods[m] for m in names)])
        if stacked.is_cuda:
            self.host = torch.empty(stacked.shape, dtype=stacked.dtype, pin_memory=True)
            self.host.copy_(stacked, non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
        else:
            self.host = stacked
        self.names = names

    def _rows(self) -> list[list[float]]:
        if self.event is not None:
            self.event.synchronize()
        return self.host.tolist()

    def result(self) -> list[float]:
        """The scores as floats, once they have arrived."""
        return self._rows()[0]

    def by_method(self) -> dict[str, list[float]] | None:
        """Each method's scores as floats (None where only one method ran)."""
        if not self.names:
            return None
        return dict(zip(self.names, self._rows()[1:]))
