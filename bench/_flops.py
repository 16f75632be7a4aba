"""The machine's fp32 peak and a Transformer's training FLOPs, for the `mfu` the benchmarks print."""

import os


def fp32_peak():
    """`(FLOP/s, how)`: usable cores x fp32 FLOPs per cycle x clock, read from /proc/cpuinfo."""
    cores = len(os.sched_getaffinity(0))
    flags, mhz = set(), None
    with open("/proc/cpuinfo") as file:
        for line in file:
            key, _, value = line.partition(":")
            if key.strip() == "flags" and not flags:
                flags = set(value.split())
            elif key.strip() == "cpu MHz" and mhz is None:
                mhz = float(value)
    # One 512-bit FMA per cycle (16 fp32 lanes x 2 FLOPs); AVX2: one 256-bit FMA.
    per_cycle = 32 if "avx512f" in flags else 16 if {"avx2", "fma"} <= flags else 8
    peak = cores * per_cycle * mhz * 1e6
    return peak, f"{cores} cores x {per_cycle} fp32 FLOPs/cycle x {mhz / 1000:.2f} GHz"


def training_flops_per_token(params, num_layers, hidden_dim, context):
    # PaLM appendix B: 6N for the weight matmuls forward and backward plus
    # 12 * layers * width * context for attention scores and values.
    return 6 * params + 12 * num_layers * hidden_dim * context


def mfu_fields(flops_per_token, tokens_per_second):
    """The JSON fields every benchmark with an `mfu` prints."""
    peak, how = fp32_peak()
    return {
        "training_flops_per_token": int(flops_per_token),
        "fp32_peak_flops": peak, "fp32_peak": how,
        "mfu": round(flops_per_token * tokens_per_second / peak, 4),
    }
