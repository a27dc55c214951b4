"""`python -m mappers.opcua ...` is `kedge mapper opcua ...`."""

import sys

from mappers.app import main

sys.exit(main("opcua"))
