"""`python -m cloudcore.console ...` is `kedge console ...`."""

import argparse
import sys

from cloudcore.console.serve import add_arguments, run

parser = argparse.ArgumentParser(prog="kedge console", description=__doc__)
add_arguments(parser)
sys.exit(run(parser.parse_args()))
