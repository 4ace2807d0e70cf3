"""optimkit: the reference implementation the Descent book builds up.

Two faces over one set of update rules:

* :mod:`optimkit.rules` -- small pure functions with explicit state
  (``adam_init`` / ``adam_update``), the form the chapters teach;
* the torch.optim-style classes below (``SGD``, ``Adam``, ...), with torch's
  names, defaults and semantics, updating NumPy arrays in place.
"""

from . import rules
from .optim import SGD, Adagrad, Adam, AdamW, NAdam, Optimizer, RAdam, RMSprop, OPTIMIZERS

__all__ = ["rules", "Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "RAdam",
           "OPTIMIZERS"]
