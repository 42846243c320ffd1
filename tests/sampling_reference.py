"""The frames each sampling rule names, chosen by direct loops over a reference decode's frame times and key flags."""

from __future__ import annotations

from collections.abc import Sequence


def reference_pick(times: Sequence[float], keys: Sequence[bool], duration: float, spec: str) -> list[int]:
    """The indices ``spec`` (``all``, ``keyframes``, ``every:N``, ``fps:R``, ``uniform:N``) names among frames
    shown at ``times`` (presentation order), by the rules README states, with no code from streamdet."""
    mode, _, value = spec.partition(":")
    indices = range(len(times))
    if mode == "all":
        return list(indices)
    if mode == "keyframes":
        return [index for index in indices if keys[index]]
    if mode == "every":
        return [index for index in indices if index % int(value) == 0]
    if mode == "fps":
        chosen, tick, rate = [], 0, float(value)
        for index, time in enumerate(times):
            if time - times[0] + 1e-6 >= tick / rate:
                chosen.append(index)
                while time - times[0] + 1e-6 >= tick / rate:
                    tick += 1
        return chosen
    count = int(value) if value else 16
    if len(times) <= count:
        return list(indices)
    chosen = []
    for i in range(count):
        target = (i + 0.5) * duration / count
        on_screen = [index for index, time in enumerate(times) if time <= target + 1e-6]
        chosen.append(on_screen[-1] if on_screen else 0)
    return sorted(set(chosen))
