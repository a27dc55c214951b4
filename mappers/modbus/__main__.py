"""`python -m mappers.modbus ...` is `kedge mapper modbus ...`."""

import sys

from mappers.app import main

sys.exit(main("modbus"))
