"""Run the ganvae CLI and SIGKILL it at a chosen point (used by test_reliability.py).

    python tests/killer.py POINT N ganvae-args...

POINT is where to die, the N-th time it is reached: step | tensors | json | metrics | final | samples.
"""

import os
import signal
import sys

point, nth, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
seen = {"n": 0}


def reached() -> bool:
    seen["n"] += 1
    return seen["n"] == nth


def die():
    os.kill(os.getpid(), signal.SIGKILL)


import ganvae.trainer as trainer  # noqa: E402
from ganvae.models.base import GenerativeModel  # noqa: E402

if point == "step":
    # inside train_step: after the forward pass, before the update
    real_backward = GenerativeModel.backward

    def backward(self, *a, **kw):
        if reached():
            die()
        return real_backward(self, *a, **kw)

    GenerativeModel.backward = backward
elif point in ("tensors", "json"):
    real_replace = os.replace
    suffix = ".safetensors" if point == "tensors" else ".json"

    def replace(src, dst):
        if str(dst).endswith(suffix) and "checkpoints" in str(dst) and reached():
            die()
        return real_replace(src, dst)

    os.replace = replace
elif point == "metrics":
    real_log = trainer.Trainer._log

    def _log(self, metrics, *a):
        if reached():
            metrics.write('{"step": %d, "ima' % self.step)
            metrics.flush()
            die()
        return real_log(self, metrics, *a)

    trainer.Trainer._log = _log
elif point == "final":
    real_save = GenerativeModel.save_pretrained

    def save_pretrained(self, d):
        if reached():
            die()
        return real_save(self, d)

    GenerativeModel.save_pretrained = save_pretrained
elif point == "samples":
    real_write = trainer.Trainer._write_samples

    def _write_samples(self, *a):
        if reached():
            die()
        return real_write(self, *a)

    trainer.Trainer._write_samples = _write_samples
else:
    sys.exit(f"unknown kill point {point}")

from ganvae.cli import main  # noqa: E402

sys.exit(main(args))
