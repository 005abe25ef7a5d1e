"""Entry point for ``python -m seqgen``."""

import sys

from seqgen.cli import main

sys.exit(main())
