"""Scale-out scanning on Ray: Ray Data decodes on CPU tasks, detector actors score, the driver writes resumable part files."""

from streamdet.cluster.inputs import Pending, gather_sources, pending_inputs
from streamdet.cluster.job import BatchSummary, Progress, require_ray, run_batch
from streamdet.cluster.parts import PartWriter, read_rows

__all__ = [
    "BatchSummary", "PartWriter", "Pending", "Progress", "gather_sources", "pending_inputs", "read_rows", "require_ray", "run_batch",
]
