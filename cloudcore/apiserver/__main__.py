"""`python -m cloudcore.apiserver ...` is `kedge apiserver ...`."""

import sys

from cloudcore.apiserver.server import main

sys.exit(main())
