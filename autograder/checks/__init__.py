"""Hidden numeric checks, one module per assignment (see core.py for the probe/judge design).

Each module names its assignment (``ASSIGNMENT = "01_sgd"``) and its ``PROBLEMS``;
:func:`registry` finds them all, so adding an assignment touches no shared file.
"""

from __future__ import annotations

import importlib
import pkgutil


def registry() -> dict[str, dict]:
    """``{assignment: {problem name: Problem}}`` for every checks module."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "core":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found[module.ASSIGNMENT] = module.PROBLEMS
    return dict(sorted(found.items()))
