"""Analysis: the beat grid (beats, downbeats, metre, tempo) and the key, between the networks
and the pipelines; it imports only the core and the networks.

- ``beats``: :func:`analyse_beats`, the one entry point, with its backends;
- ``grid``: :class:`BeatGrid`, the typed result, and the onset features it carries;
- ``frontend``: the learned tracker's log-mel spectrogram frames;
- ``dbn``: the dynamic Bayesian network that decodes activations into a beat grid;
- ``tracker``: the learned tracker (network + decoder) and its weights;
- ``dsp``: the hand-written spectral-flux tracker, the fallback;
- ``scores``: the beat F-measure the training loop reports;
- ``key``: the musical key, Camelot notation, key compatibility.
"""
