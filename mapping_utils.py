"""``python mapping_utils.py``: fit feature mappings; write a song's parameter timeline.

An entry point of the design card, kept with its arguments; the code is
:mod:`deepaudio.cli.mapping` (also installed as ``deepaudio-map``).
``--help`` lists the commands.
"""

import sys

from deepaudio.cli.mapping import main

if __name__ == "__main__":
    sys.exit(main())
