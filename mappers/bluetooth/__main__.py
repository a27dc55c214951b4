"""`python -m mappers.bluetooth ...` is `kedge mapper bluetooth ...`."""

import sys

from mappers.app import main

sys.exit(main("bluetooth"))
