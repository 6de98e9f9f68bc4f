"""A torchrun job for tests/test_ddp.py: every 2-process run the tests compare, in one launch.

    torchrun --standalone --nproc-per-node 2 -m tests.ddp_job ROOT

Trains each case of test_ddp.CASES into ROOT/NAME-2, and the dcgan case for half its steps into
ROOT/switch (resumed by one process in the test), and a vae that rank 0's callback stops early
into ROOT/stopped, through the Python API under torchrun.
"""

import sys
from pathlib import Path

from ganvae import parallel
from ganvae.callbacks import Callback
from ganvae.trainer import train
from tests.test_ddp import CASES, DATA, DEVICE, STEPS, data_of


class StopAt(Callback):
    """Requests the early stop at `step`; callbacks run on rank 0 alone, so rank 1 must learn it."""

    def __init__(self, step: int):
        self.step = step

    def on_step(self, trainer) -> None:
        if trainer.step == self.step:
            trainer.request_stop(f"asked at {self.step}")


def main(root: Path) -> None:
    for name, (preset, over) in CASES.items():
        train(preset, data_of(name), root / f"{name}-2", overrides={**over, "width": 8, "latent": 8},
              steps=STEPS[name], batch_size=16, device=DEVICE, progress=False, log_every=1, checkpoint_every=4)
    preset, over = CASES["dcgan"]
    train(preset, DATA, root / "switch", overrides={**over, "width": 8, "latent": 8}, steps=STEPS["dcgan"] // 2,
          batch_size=16, device=DEVICE, progress=False, log_every=1)
    preset, over = CASES["vae"]
    train(preset, DATA, root / "stopped", overrides={**over, "width": 8, "latent": 8}, steps=12, batch_size=16,
          device=DEVICE, progress=False, log_every=1, callbacks=[StopAt(5)])
    parallel.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
