"""Crossfades between two songs: ramps, silence trimming, loudness matching, beat-synchronous
plans, the WaveNet embedding fade, measures (roughness, dissonance, loudness dip), DeepBass'
``config.ini``, and evaluation figures."""
