"""`python -m edgecore ...` is `kedge edgecore ...`."""

import sys

from edgecore.cli import main

sys.exit(main())
