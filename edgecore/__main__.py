"""`python -m edgecore ...` is `kedge edgecore ...`."""

import sys

from kedge.cli import main

sys.exit(main(["edgecore", *sys.argv[1:]]))
