"""``python api.py``: serve the playground.

An entry point of the design card, kept with its arguments; the code is
:mod:`deepaudio.cli.serve` (also installed as ``deepaudio-serve``).
``--help`` lists the commands.
"""

import sys

from deepaudio.cli.serve import main

if __name__ == "__main__":
    sys.exit(main())
