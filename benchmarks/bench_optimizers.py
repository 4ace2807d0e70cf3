"""One optimizer step on 10M float32 parameters: every optimkit class vs torch.optim, same run.

For each configuration, three implementations each run in a process of their own (so the
peak memory is their own), on one thread (``torch.set_num_threads(1)``, and
``OMP/OPENBLAS/MKL_NUM_THREADS=1``): torch's single-tensor path (``foreach=False``), torch's
foreach path, and optimkit's class, alternating, in two rounds. Printed per row: each one's
median step time (CPU time of the process, ``time.process_time``: on a shared machine the time
spent waiting for a core is not charged; best of the rounds), optimkit's time over torch's two, and beside each figure its multiple of the **memory-bandwidth floor**:
the bytes a step must move (each parameter-sized array it reads or writes once: p, g and the
state) divided by the copy rate of ``np.copyto`` on a 10M float32 array, measured in the same
run (the fastest of a few copies before and after the table). ``peak`` is the extra resident
memory during the steps, in parameter-sized arrays (40 MB), optimkit's and torch foreach's.

Target (issue 11): Adam, AdamW and SGD with momentum at or below torch's foreach time, with no
parameter-sized array allocated per step (``optimkit.fused``; the bit-equality and the
allocation are tests in ``tests/core/test_fused.py``).

    python benchmarks/bench_optimizers.py [--size N] [--repeats R] [--rounds K] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
os.environ.update(ONE_THREAD)  # before NumPy or torch start their thread pools

# (class name, keyword arguments, parameter-sized arrays a step reads + writes at the least)
CONFIGS = [
    ("SGD", dict(lr=1e-3), 3),                                      # p, g -> p
    ("SGD", dict(lr=1e-3, momentum=0.9), 5),                        # p, g, buf -> p, buf
    ("SGD", dict(lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4), 5),
    ("Adam", dict(lr=1e-3), 7),                                     # p, g, m, v -> p, m, v
    ("Adam", dict(lr=1e-3, weight_decay=1e-2, amsgrad=True), 9),   # + v_max in and out
    ("AdamW", dict(lr=1e-3), 7),
    ("Adagrad", dict(lr=1e-2), 5),
    ("RMSprop", dict(lr=1e-2), 5),
    ("NAdam", dict(lr=2e-3), 7),
    ("RAdam", dict(lr=1e-3), 7),
    ("Adamax", dict(lr=2e-3), 7),
    ("Adadelta", dict(lr=1.0), 7),
    ("Rprop", dict(lr=1e-2), 7),                                    # p, g, prev, step size
    ("ASGD", dict(lr=1e-2), 5),                                     # p, g, ax -> p, ax
    ("Adafactor", dict(lr=1e-2), 5),                                # a vector: full variance
]
IMPLS = ["torch foreach=False", "torch foreach=True", "optimkit"]
NOT_HERE = {"Muon": "matrices only, its cost is Newton-Schulz matmuls, not memory traffic",
            "LBFGS": "steps with a closure; its cost is the closure's"}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def label(name: str, kwargs: dict) -> str:
    return f"{name}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def copy_seconds(size: int, repeats: int = 11) -> float:
    """The fastest np.copyto of ``size`` float32 (it reads one array and writes one)."""
    import numpy as np

    src = np.random.default_rng(0).standard_normal(size, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        np.copyto(dst, src)
        times.append(time.process_time() - t0)
    return min(times)


def run_one(index: int, impl: str, size: int, repeats: int) -> dict:
    import numpy as np

    name, kwargs, _ = CONFIGS[index]
    rng = np.random.default_rng(0)
    param = rng.standard_normal(size, dtype=np.float32)
    grad = rng.standard_normal(size, dtype=np.float32)
    if impl.startswith("torch"):
        import torch

        torch.set_num_threads(1)
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
    cpu, wall = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        step()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return {"median_s": median(cpu), "wall_s": median(wall),
            "peak_extra_mb": max(0.0, peak_rss_mb() - before)}


def measure(index: int, impl: str, size: int, repeats: int) -> dict | None:
    proc = subprocess.run([sys.executable, __file__, "--one", str(index), impl, "--size",
                           str(size), "--repeats", str(repeats)],
                          capture_output=True, text=True, env={**os.environ, **ONE_THREAD})
    if proc.returncode != 0:  # e.g. a torch optimizer without a foreach path
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these classes")
    parser.add_argument("--one", nargs=2, metavar=("INDEX", "IMPL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(int(args.one[0]), args.one[1], args.size, args.repeats)))
        return

    import optimkit

    missing = sorted(set(optimkit.OPTIMIZERS) - {name for name, _, _ in CONFIGS} - set(NOT_HERE))
    if missing:
        raise SystemExit(f"bench_optimizers.py has no row for {missing}: add them to CONFIGS")
    array_mb = args.size * 4 / 1e6
    copies = [copy_seconds(args.size)]
    print(f"One step on {args.size:,} float32 parameters ({array_mb:.0f} MB per array): CPU time "
          f"of the one thread, median of {args.repeats} steps, best of {args.rounds} rounds "
          f"(each implementation in its own process, the three alternating); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"Copy rate (np.copyto, {args.size:,} float32): "
          f"{2 * args.size * 4 / copies[0] / 1e9:.1f} GB/s")
    width = max(len(label(name, kwargs)) for name, kwargs, _ in CONFIGS) + 1
    head = (f"{'optimizer':<{width}}{'floor':>7} |{'torch single':>15}{'torch foreach':>16}"
            f"{'optimkit':>15} |{'/single':>8}{'/foreach':>9} |{'peak: foreach':>14}{'optimkit':>9}")
    print(head)
    print("-" * len(head))
    rows = []
    for index, (name, kwargs, arrays) in enumerate(CONFIGS):
        if args.only and name not in args.only:
            continue
        results = {}
        for _ in range(args.rounds):  # alternate the three, keep each one's best round
            for impl in IMPLS:
                r = measure(index, impl, args.size, args.repeats)
                old = results.get(impl)
                if old is None or "error" in old or ("median_s" in r and
                                                     r["median_s"] < old["median_s"]):
                    results[impl] = r
        rows.append((index, results))
    copies.append(copy_seconds(args.size))
    copy_s = min(copies)
    for index, results in rows:
        name, kwargs, arrays = CONFIGS[index]
        floor_ms = arrays * args.size * 4 / (2 * args.size * 4 / copy_s) * 1e3
        cells = []
        for impl in IMPLS:
            r = results[impl]
            cells.append(f"{'n/a':>15}" if "error" in r else
                         f"{r['median_s'] * 1e3:>7.1f} ({r['median_s'] * 1e3 / floor_ms:>4.1f}x)")
        mine = results["optimkit"].get("median_s")
        ratios = [f"{mine / results[i]['median_s']:.2f}" if mine and "median_s" in results[i]
                  else "n/a" for i in IMPLS[:2]]
        peaks = [f"{results[i]['peak_extra_mb'] / array_mb:.1f}" if "peak_extra_mb" in results[i]
                 else "n/a" for i in IMPLS[1:]]
        print(f"{label(name, kwargs):<{width}}{floor_ms:>5.1f}ms |{cells[0]}{cells[1]} {cells[2]} |"
              f"{ratios[0]:>8}{ratios[1]:>9} |{peaks[0]:>14}{peaks[1]:>9}")
    print(f"Load average at the end {os.getloadavg()[0]:.1f}. CPU time, not wall time: on a shared "
          f"machine a process waiting for a core is not charged; memory contention still is.")
    print(f"Times in ms; (Nx) = time / floor. floor = the parameter-sized arrays a step reads and "
          f"writes x {array_mb:.0f} MB / copy rate ({2 * args.size * 4 / copy_s / 1e9:.1f} GB/s, the fastest "
          f"of {2 * 11} copies before and after).")
    print("/single, /foreach: optimkit's time over torch's (target for Adam, AdamW, SGD with "
          "momentum: /foreach <= 1). peak: extra resident memory during the steps, in "
          "parameter-sized arrays.")
    for errors in ({i: r["error"] for i, r in res.items() if "error" in r} for _, res in rows):
        for impl, message in errors.items():
            print(f"n/a ({impl}): {message}")
    for name, why in NOT_HERE.items():
        print(f"Not timed here: {name} ({why}).")


if __name__ == "__main__":
    main()
