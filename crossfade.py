"""``python crossfade.py``: crossfades between two songs, DeepBass' config.ini included.

An entry point of the design card, kept with its arguments; the code is
:mod:`deepaudio.cli.crossfade` (also installed as ``deepaudio-crossfade``).
``--help`` lists the commands.
"""

import sys

from deepaudio.cli.crossfade import main

if __name__ == "__main__":
    sys.exit(main())
