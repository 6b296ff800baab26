"""``python mixer_api.py``: stem separation, mixing, evaluation, job workers.

An entry point of the design card, kept with its arguments; the code is
:mod:`deepaudio.cli.mixer` (also installed as ``deepaudio-mixer``).
``--help`` lists the commands.
"""

import sys

from deepaudio.cli.mixer import main

if __name__ == "__main__":
    sys.exit(main())
