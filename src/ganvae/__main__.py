"""`python -m ganvae ...`: the command line (what torchrun starts in every process)."""

import os
import sys

from .cli import main
from .parallel import launched

code = main()
if launched():
    # A rank of a torchrun job leaves without the interpreter's teardown: its work is written
    # and its process group destroyed, but gloo's worker threads can still be joinable when
    # the interpreter finalizes, and destroying one aborts the process ("terminate called
    # without an active exception", SIGABRT; pytorch/pytorch#190489), which fails the whole job
    # after it has succeeded (seen once in ~10 `compare --nproc 2` runs of tests/test_ddp.py).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
