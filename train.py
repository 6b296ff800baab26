"""``python train.py``: train a model from a JSON config (also under torchrun); test it.

An entry point of the design card, kept with its arguments; the code is
:mod:`deepaudio.cli.train` (also installed as ``deepaudio-train``).
``--help`` lists the commands.
"""

import sys

from deepaudio.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
