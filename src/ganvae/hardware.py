"""What the machine is and what it can do: the processor's name, a one-line description for
benchmark tables, FLOP counts of a call and this machine's measured convolution peak, so that a
speed can be read against the limit (GFLOP/s achieved / GFLOP/s possible)."""

from __future__ import annotations

import platform
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode


def cpu_name() -> str:
    """The processor's model name (Linux /proc/cpuinfo), or the platform's word for it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bfloat16 convolutions natively on this CPU (AVX-512 BF16 or AMX; the
    test PyTorch itself uses). Without it bf16 autocast falls back to reference loops."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_has_fp16() -> bool:
    """Whether oneDNN runs float16 convolutions natively on this CPU (AVX-512 FP16 or AMX-FP16).
    Without it fp16 autocast falls back to reference loops, as bf16 does without AVX-512 BF16."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
    except (AttributeError, RuntimeError):
        return False


def machine_line() -> str:
    """'torch 2.13.0, 2 threads, Intel(R) Xeon(R) Processor' (and the GPU where there is one)."""
    line = f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_name()}"
    if torch.cuda.is_available():
        line += f", {torch.cuda.get_device_name(0)}"
    return line


def count_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call of `fn` (a multiply-add counts 2), as PyTorch's
    FlopCounterMode counts them: matrix products and convolutions, forward and backward, which
    is where all but a few percent of a convolutional net's work is."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _best_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()   # warm-up: oneDNN picks and caches its kernel on the first call
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@torch.no_grad()
def conv_peak_gflops(dtype: torch.dtype = torch.float32, repeats: int = 3) -> float:
    """GFLOP/s of a large 3x3 convolution (64 x 256 -> 256 channels, 28 x 28, channels-last) on
    this machine's CPU: the practical ceiling oneDNN reaches, which small layers only approach.
    Measured, not looked up: CPUs that all report AVX-512-BF16 run bfloat16 at anything from
    half (this project's 2-core Xeon, BENCHMARKS.md) to several times the float32 rate."""
    x = torch.randn(64, 256, 28, 28, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
    flops = 2 * 64 * 256 * 256 * 9 * 28 * 28
    return flops / _best_seconds(lambda: F.conv2d(x, w, padding=1), repeats) / 1e9
