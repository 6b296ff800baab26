"""Every network of the toolkit, and the one module that writes and reads checkpoints.

- ``cnn``: the FMA models (conv and dense autoencoders, VGG/AlexNet genre classifiers);
- ``registry``: models by name, parameter counts;
- ``wavenet``: the NSynth-design WaveNet autoencoder, with fast generation;
- ``preference``: the mixer's per-user gain-suggestion network;
- ``checkpoint``: checkpoints (atomic, with RNG states) and loading trained runs.
"""
