"""fp32 against bf16 autocast for single convolutions on this CPU: forward and backward of one
layer at the shapes the nets use, the oneDNN kernel named (or PyTorch's reference loops when the
CPU has no native bfloat16). Prints one line per shape and precision.

    .venv/bin/python benchmarks/conv_precision.py
"""

import time

import torch


def measure(layer: torch.nn.Module, x: torch.Tensor, bf16: bool) -> tuple[float, list[str]]:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for _ in range(2):                                    # the second pass is timed
            t = time.perf_counter()
            layer(x).float().sum().backward()
            seconds = time.perf_counter() - t
        with torch.autograd.profiler.profile() as prof:
            layer(x).float().sum().backward()
    kernels = sorted({e.key for e in prof.key_averages() if "slow" in e.key or "mkldnn" in e.key})
    return seconds, kernels


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"native bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    torch.manual_seed(0)
    for cin, cout, side, transposed in [(64, 128, 14, False), (64, 128, 16, False), (256, 512, 4, False),
                                         (128, 64, 8, True), (512, 256, 2, True)]:
        kind = torch.nn.ConvTranspose2d if transposed else torch.nn.Conv2d
        layer = kind(cin, cout, 4, 2, 1).to(memory_format=torch.channels_last)
        x = torch.randn(64, cin, side, side).contiguous(memory_format=torch.channels_last).requires_grad_()
        for bf16 in (False, True):
            seconds, kernels = measure(layer, x, bf16)
            print(f"{kind.__name__}({cin}->{cout}) on {side}x{side}, batch 64, {'bf16' if bf16 else 'fp32'}: "
                  f"{1000 * seconds:.1f} ms  {', '.join(kernels) or 'oneDNN (no reference loops)'}")


if __name__ == "__main__":
    main()
