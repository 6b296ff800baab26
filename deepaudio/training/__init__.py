"""Training: one optimisation loop and one metrics writer for the FMA models and the WaveNet,
the FMA trainer (resumable, DDP under torchrun, test metrics), the WaveNet trainer, and the
hyper-parameter search.
"""
