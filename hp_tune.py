"""``python hp_tune.py``: seeded random hyper-parameter search.

An entry point of the design card, kept with its arguments; the code is
:mod:`deepaudio.cli.hp_tune` (also installed as ``deepaudio-hp-tune``).
``--help`` lists the commands.
"""

import sys

from deepaudio.cli.hp_tune import main

if __name__ == "__main__":
    sys.exit(main())
