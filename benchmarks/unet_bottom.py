"""The U-Net's innermost grid (issue 31): pix2pix and cyclegan steps with the default 2x2
bottom against a 4x4 one (`--set unet_bottom=4`), width 32, batch 64 of edges2fashion, one
thread, channels-last as the trainer runs them. The two models are stepped alternately, so a
machine busy with other work slows both alike.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/unet_bottom.py [pix2pix|cyclegan] [REPEATS]
"""

import sys
import time

import torch

from ganvae.data import load_dataset, to_float
from ganvae.trainer import build


def main(name: str = "pix2pix", repeats: int = 8) -> None:
    torch.set_num_threads(1)
    ds = load_dataset("task:edges2fashion")
    cl = torch.channels_last
    a = to_float(torch.from_numpy(ds.train.a[:64])).contiguous(memory_format=cl)
    b = to_float(torch.from_numpy(ds.train.x[64:128])).contiguous(memory_format=cl)
    models = {k: build(name, ds, {"width": 32, "unet_bottom": k})[0].to(memory_format=cl) for k in (2, 4)}
    for m in models.values():
        m.optimizers()
        m.train_step((a, b), 0)   # warm-up
    spent = dict.fromkeys(models, 0.0)
    for r in range(repeats):
        for k, m in models.items():
            t0 = time.perf_counter()
            m.train_step((a, b), r + 1)
            spent[k] += time.perf_counter() - t0
    per = {k: v / repeats for k, v in spent.items()}
    print(f"{name}: {per[2]:.3f} s/step at bottom 2, {per[4]:.3f} at bottom 4: {per[2] / per[4]:.2f}x")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "pix2pix", int(sys.argv[2]) if len(sys.argv) > 2 else 8)
