"""Samples per second of the scenes generator on ONE core: render only, and render + encode +
write to a shard. Usage: python bench/scenes.py [--res 32 64 128] [--seconds 3]"""
from __future__ import annotations

import os

# One thread everywhere, set before numpy loads its BLAS/OpenMP runtimes.
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from fourm.datasets.scenes.generate import render_sample  # noqa: E402
from fourm.shards import AtomicShardWriter  # noqa: E402


def rate(step, seconds: float) -> tuple[float, float]:
    """Calls of step(i) per second of wall-clock time and per second of this process's CPU time,
    run for about `seconds` after a short warm-up. On a busy shared machine the CPU-time figure is
    the fairer one (the wall clock also counts time spent waiting for the core)."""
    for i in range(5):
        step(i)
    count, wall, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        step(count)
        count += 1
    return count / (time.perf_counter() - wall), count / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--res", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # pin to one core
    columns = ("res", "render /s (wall)", "render /s (cpu)", "render+write /s (wall)", "render+write /s (cpu)")
    widths = [max(len(c), 5) for c in columns]
    print(" | ".join(f"{c:>{w}}" for c, w in zip(columns, widths)))
    print("-+-".join("-" * w for w in widths))
    with tempfile.TemporaryDirectory() as tmp:
        for res in args.res:
            render_rates = rate(lambda i: render_sample(0, "train", i, res), args.seconds)
            with AtomicShardWriter(os.path.join(tmp, f"bench-{res}.tar")) as writer:
                write_rates = rate(lambda i: writer.write(render_sample(0, "train", i, res).files()), args.seconds)
            cells = [str(res)] + [f"{r:.1f}" for r in render_rates + write_rates]
            print(" | ".join(f"{c:>{w}}" for c, w in zip(cells, widths)))

if __name__ == "__main__":
    main()
