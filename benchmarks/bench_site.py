"""Site budgets: clean build, one-chapter rebuild, page weight, live slider latency.

The book is copied to a scratch root so the measurement starts from an empty
execution cache and edits nothing in the repository.

    python benchmarks/bench_site.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def build(root: Path) -> float:
    env = dict(os.environ, DESCENT_STATIC="1", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    started = time.perf_counter()
    # cwd=root: the execution cache path in _config.yml is relative, and must be the scratch one.
    subprocess.run([str(BIN / "jupyter-book"), "build", "--quiet", "."], check=True, env=env, cwd=root,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def slider_latency() -> list[tuple[str, float, float]]:
    """Median and worst time of a live slider move (update artists + render the frame)."""
    import optimkit
    from optimkit import landscapes
    from descent.drawing import race, trajectory_figure

    figures = {}
    land = landscapes.rosenbrock()
    runs = race(land, {"SGD+momentum": lambda p: optimkit.SGD(p, lr=1e-3, momentum=0.9),
                       "Adam": lambda p: optimkit.Adam(p, lr=0.05),
                       "RMSprop": lambda p: optimkit.RMSprop(p, lr=0.01)}, steps=300)
    figures["trajectory race on Rosenbrock"] = trajectory_figure(land, runs)
    ravine = landscapes.ravine(20.0)
    figures["trajectory race on the ravine"] = trajectory_figure(
        ravine, race(ravine, {"SGD": lambda p: optimkit.SGD(p, lr=0.3),
                              "Adam": lambda p: optimkit.Adam(p, lr=0.3)}, steps=100))
    results = []
    for name, figure in figures.items():
        values = figure.sliders["step"]
        figure.frame(step=values[0])  # the first frame renders the static background once
        times = []
        for value in values * 2:
            started = time.perf_counter()
            figure.frame(step=value)
            times.append(time.perf_counter() - started)
        results.append((name, statistics.median(times) * 1e3, max(times) * 1e3))
    return results


def main() -> int:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = [c["file"] for part in toc.get("parts", [toc]) for c in part.get("chapters", [])
                if Path(c["file"]).name[:2].isdigit()]
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp_name:
        root = Path(tmp_name)
        for item in ("_config.yml", "_toc.yml"):
            shutil.copy(ROOT / item, root / item)
        shutil.copytree(ROOT / "book", root / "book")
        (root / "optimkit").symlink_to(ROOT / "optimkit")  # the chapters literalinclude its code
        (root / "exercises").symlink_to(ROOT / "exercises")  # chapters offer their assignment
        (root / "tools").mkdir()
        shutil.copy(ROOT / "tools" / "descent_site.py", root / "tools")  # the site's Sphinx extension
        (root / "_build").mkdir()
        shutil.copytree(ROOT / "_build" / "vendor", root / "_build" / "vendor")
        clean = build(root)
        edited = chapters[len(chapters) // 2]
        path = root / f"{edited}.md"
        # A new code cell changes the notebook's code, so the cache must re-execute it (only it).
        path.write_text(path.read_text() + "\n```{code-cell} ipython3\n# edited for the rebuild benchmark\n```\n")
        rebuild = build(root)
        noop = build(root)
        html = root / "_build" / "html"
        pages = sorted(((p.stat().st_size, p.relative_to(html))
                        for p in html.rglob("*.html")), reverse=True)
        frames = list((html / "_static" / "descent-frames").rglob("*.webp"))
        frame_bytes = sum(f.stat().st_size for f in frames)
    print(f"Book: {len(chapters)} chapters on {os.cpu_count()} cores")
    print(f"  clean build with execution : {clean:7.1f} s   (budget: minutes, not tens of minutes)")
    print(f"  rebuild after editing {Path(edited).name}: {rebuild:7.1f} s   (budget: well under a minute)")
    print(f"  rebuild with nothing edited: {noop:7.1f} s   (baseline for the line above)")
    print(f"  heaviest pages' HTML (budget 1 MB each; a first view's total is the browser test's): " +
          ", ".join(f"{name} {size / 2**20:.2f} MB" for size, name in pages[:3]))
    print(f"  slider frames and figures as files: {len(frames)}, {frame_bytes / 2**20:.1f} MB "
          f"(fetched when a reader moves a slider, not with the page)")
    print("Live slider move on 2-D landscape figures (update artists + render; budget 100 ms):")
    worst = 0.0
    for name, median, high in slider_latency():
        print(f"  {name:<34} median {median:6.1f} ms   worst {high:6.1f} ms")
        worst = max(worst, median)
    return 0 if pages[0][0] <= 1 * 2**20 else 1


if __name__ == "__main__":
    raise SystemExit(main())
