"""`python -m knockoff` runs the command line."""

import sys

from knockoff.cli import main

if __name__ == "__main__":
    sys.exit(main())
