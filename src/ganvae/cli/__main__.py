"""`python -m ganvae.cli ...`: the same as `ganvae ...` (and `python -m ganvae ...`)."""

import sys

from . import main

sys.exit(main())
