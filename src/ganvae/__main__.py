"""`python -m ganvae ...`: the command line (what torchrun starts in every process)."""

import sys

from .cli import main

sys.exit(main())
