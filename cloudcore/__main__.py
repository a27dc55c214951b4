"""`python -m cloudcore ...` is `kedge cloudcore ...`."""

import sys

from cloudcore.app import main

sys.exit(main())
