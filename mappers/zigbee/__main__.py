"""`python -m mappers.zigbee ...` is `kedge mapper zigbee ...`."""

import sys

from mappers.app import main

sys.exit(main("zigbee"))
