"""``python data_processor.py``: the FMA-format sample set, processed datasets, shards.

An entry point of the design card, kept with its arguments; the code is
:mod:`deepaudio.cli.data` (also installed as ``deepaudio-data``).
``--help`` lists the commands.
"""

import sys

from deepaudio.cli.data import main

if __name__ == "__main__":
    sys.exit(main())
