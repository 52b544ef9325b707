"""Entry point: ``python -m bench [--quick] [--only core,peers,cli,http] [--out DIR]``."""

import sys

from bench.runner import main

if __name__ == "__main__":
    sys.exit(main())
