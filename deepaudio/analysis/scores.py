"""Beat-tracking scores the training loop reports without mir_eval: the F-measure of found
beat times against reference times, each reference matched at most once within +-70 ms (the
MIREX tolerance, as ``mir_eval.beat.f_measure`` computes it; the benchmarks use mir_eval
itself, with its 5 s cut)."""

from __future__ import annotations

import numpy as np

TOLERANCE = 0.07


def f_measure(reference: np.ndarray, estimate: np.ndarray, tolerance: float = TOLERANCE) -> float:
    ref = np.sort(np.asarray(reference, np.float64))
    est = np.sort(np.asarray(estimate, np.float64))
    if not len(ref) or not len(est):
        return 0.0
    hits, j = 0, 0
    for t in est:                    # greedy in time order: both lists are sorted and the
        while j < len(ref) and ref[j] < t - tolerance:   # tolerance is under half a beat
            j += 1
        if j < len(ref) and abs(ref[j] - t) <= tolerance:
            hits += 1
            j += 1
    precision, recall = hits / len(est), hits / len(ref)
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)
