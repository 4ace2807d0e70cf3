"""One optimizer step on 10M float32 parameters: optimkit vs torch.optim, same run.

Each configuration runs in its own process so its peak memory is its own:
we report the median step time and the peak extra resident memory during the
steps, in units of one parameter-sized array (40 MB), against torch's
single-tensor path (foreach=False, the baseline) and torch's foreach path.

    python benchmarks/bench_optimizers.py [--size N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

CONFIGS = {
    "Adam": dict(lr=1e-3),
    "SGD": dict(lr=1e-3, momentum=0.9),
}
IMPLS = ["torch foreach=False", "torch foreach=True", "optimkit"]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(name: str, impl: str, size: int, repeats: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    param = rng.standard_normal(size, dtype=np.float32)
    grad = rng.standard_normal(size, dtype=np.float32)
    kwargs = CONFIGS[name]
    if impl.startswith("torch"):
        import torch

        torch.set_num_threads(1)  # numpy's elementwise ops are single-threaded too
        p = torch.from_numpy(param).requires_grad_()
        p.grad = torch.from_numpy(grad)
        opt = getattr(torch.optim, name)([p], foreach=impl.endswith("True"), **kwargs)
        step = opt.step
    else:
        import optimkit

        opt = getattr(optimkit, name)([param], **kwargs)
        step = lambda: opt.step([grad])  # noqa: E731
    step()  # allocate the state outside the measurement
    before = rss_mb()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"median_s": times[len(times) // 2], "peak_extra_mb": max(0.0, peak_rss_mb() - before)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--one", nargs=2, metavar=("OPTIMIZER", "IMPL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one, args.size, args.repeats)))
        return

    array_mb = args.size * 4 / 2**20
    print(f"One step on {args.size:,} float32 parameters ({array_mb:.0f} MB per array), "
          f"median of {args.repeats}, 1 thread each")
    print(f"{'optimizer':<30}{'implementation':<22}{'ms/step':>9}{'x baseline':>12}"
          f"{'peak extra':>13}{'arrays':>8}")
    for name, kwargs in CONFIGS.items():
        results = {}
        for impl in IMPLS:
            out = subprocess.run([sys.executable, __file__, "--one", name, impl, "--size",
                                  str(args.size), "--repeats", str(args.repeats)],
                                 check=True, capture_output=True, text=True).stdout
            results[impl] = json.loads(out)
        base = results["torch foreach=False"]["median_s"]
        label = f"{name}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"
        for impl, r in results.items():
            print(f"{label:<30}{impl:<22}{r['median_s'] * 1e3:>9.1f}{r['median_s'] / base:>11.2f}x"
                  f"{r['peak_extra_mb']:>10.0f} MB{r['peak_extra_mb'] / array_mb:>8.1f}")
            label = ""
    print("x baseline: time / torch single-tensor time (target <= 2). "
          "arrays: peak extra memory in parameter-sized arrays.")


if __name__ == "__main__":
    main()
