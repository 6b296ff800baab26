"""One lock between graph export and eager training in the same process.

``torch.onnx.export`` (the torch.export-based exporter) sets process-wide tracing state (the
FX traceback's current node metadata), and eager code in other threads passes through the same
state: every ``optimizer.zero_grad`` is wrapped by torch._dynamo's ``disable``, which annotates
it. A training job stepping in one server thread while another exported a run to ONNX failed
with ``KeyError: 'custom'`` (found by the Schemathesis run). Both hold :data:`TRACING`: an
export waits for at most one training step, a step for at most one export.
"""

from __future__ import annotations

import threading

TRACING = threading.RLock()
