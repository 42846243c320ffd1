"""When a file's packet timestamps cannot say which frame each packet decodes to, and so cannot plan exact frames.

The GOP plan (``plan``) takes the frames in the order of their packets' pts and finds each decoded frame by its
pts. Two faults that real files have break both, without any error: DivX-style packed B-frames (MPEG-4 part 2
in AVI, one packet holding a P-frame and the next B-frame; FFmpeg's decoder hands the frames out with pts in
swapped pairs, and a packet can carry a frame other than its own), and pts written in decode order on a stream
with B-frames (pts = dts, a muxer fault), where the k-th packet's pts labels the k-th decoded frame.
"""

from __future__ import annotations

from collections.abc import Sequence

# The start code of an MPEG-4 part 2 picture (VOP).
VOP_START = b"\x00\x00\x01\xb6"


def packed_bframes(data: bytes) -> bool:
    """Whether an MPEG-4 part 2 packet holds two pictures (VOPs): DivX-style packed B-frames."""
    first = data.find(VOP_START)
    return first >= 0 and data.find(VOP_START, first + len(VOP_START)) >= 0


def timestamp_problem(pts: Sequence[int], reorders: bool, packed: bool, pts_is_dts: bool) -> str | None:
    """Why packets with these pts (in decode order) cannot place decoded frames, or None where they can.

    ``reorders``: the decoder may reorder frames (the stream allows B-frames). pts that only ever increase in
    decode order and equal the dts (``pts_is_dts``) were then written in decode order; a stream that allows
    B-frames but used none (x264 on still or simple content) has increasing pts too, but its dts lag them by
    the reorder delay, and its pts are right.
    """
    if packed:
        return "packed B-frames"
    if reorders and pts_is_dts and len(pts) > 2 and all(a < b for a, b in zip(pts, pts[1:])):
        return "pts in decode order on a stream with B-frames"
    return None
