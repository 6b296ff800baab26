"""The stem mixer: separation (Demucs or the offline DSP backend) into stem folders, mix
rendering and export (dB gains, pans, LUFS under a true-peak ceiling), SDR evaluation, and the
per-user gain suggestions."""
