"""Encoding and decoding speed of the learned codecs' real files (issue 35: >= 2,000 images/s
each way on 2 CPU cores at 28x28), with where the time goes: the transforms (g_a, g_s, the
hyperprior's nets) against the entropy coder (constriction's rANS).

    python benchmarks/codec_speed.py --run runs/codec [--n 10000] [--threads 2] [--repeat 3]
    python benchmarks/codec_speed.py --train codec --steps 1000      # trains a run first

Times are the best of --repeat passes over the first --n Fashion-MNIST test images (one call
of compress / decompress each: the model batches inside), after a warm-up pass.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch


def best_of(fn, repeat: int) -> tuple[float, object]:
    fn()                                                    # warm-up (allocator, oneDNN kernels)
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="a trained codec run")
    ap.add_argument("--train", default=None, help="train this preset first (codec, codec-hyper, codec-gan)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("runs/codec-speed"))
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE for --train (e.g. width=32)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import ganvae
    from ganvae.data import load_dataset, to_float, to_uint8
    from ganvae.trainer import load_run

    if args.train:
        sets = dict(s.split("=", 1) for s in args.set)
        ganvae.train(args.train, data="fashion-mnist", run_dir=args.out, steps=args.steps, overrides=sets)
        args.run = args.out
    if args.run is None:
        ap.error("give --run RUN or --train PRESET")
    model, _ = load_run(args.run)
    x8 = load_dataset("fashion-mnist").test.x[:args.n]
    x = to_float(torch.from_numpy(x8))
    n = len(x)

    t_enc, data = best_of(lambda: model.compress(x), args.repeat)
    t_dec, y = best_of(lambda: to_uint8(model.decompress(data)), args.repeat)
    assert torch.equal(y, to_uint8(model.reconstruct(x))), "decompress(compress(x)) != reconstruct(x)"
    # the parts: the analysis transform alone, the synthesis alone (the coder is the rest)
    t_ga, _ = best_of(lambda: model.analyse(x), args.repeat)
    codes = model.decompress_codes(data)
    t_gs, _ = best_of(lambda: model.decode(codes), args.repeat)
    t_dcodes, _ = best_of(lambda: model.decompress_codes(data), args.repeat)

    c = model.config
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s); "
          f"{model.name} width {c.width}, latent {c.latent_channels}x{'x'.join(map(str, model.latent_shape[1:]))}, "
          f"hyperprior {c.hyperprior}; {n:,} images of {c.channels}x{c.size}x{c.size}")
    print(f"file: {len(data):,} bytes = {len(data) / n:.1f} bytes per image")
    print("| | images/s | ms per 1,000 |")
    print("|---|---|---|")
    for name, t in (("encode (compress: g_a + coder)", t_enc), ("  g_a alone", t_ga),
                    ("decode (decompress: coder + g_s)", t_dec), ("  coder alone (decompress_codes)", t_dcodes),
                    ("  g_s alone", t_gs)):
        print(f"| {name} | {n / t:,.0f} | {1000 * t / n * 1000:.1f} |")


if __name__ == "__main__":
    main()
