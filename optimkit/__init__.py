"""optimkit: the reference implementation the Descent book builds up.

Two faces over one set of update rules:

* :mod:`optimkit.rules` -- small pure functions with explicit state
  (``adam_init`` / ``adam_update``), the form the chapters teach;
* the torch.optim-style classes below (``SGD``, ``Adam``, ...), with torch's
  names, defaults and semantics, updating NumPy arrays in place.

Also: :mod:`optimkit.schedules` (learning-rate schedules equal to torch's),
:func:`clip_grad_norm` / :func:`clip_grad_value` (and :mod:`optimkit.clipping`'s
``global_norm`` and optax's ``clip_by_global_norm``), :mod:`optimkit.landscapes`
(2-D test functions and a trajectory runner), :mod:`optimkit.beyond` (Lookahead, LAMB,
SAM, L-BFGS), :mod:`optimkit.validate` (the argument checks) and :mod:`optimkit.digits`
(a NumPy MLP on scikit-learn's bundled digits; the data needs the optional extra
``optimkit[digits]``).

optimkit imports NumPy only and draws nothing; the book's figures are in the package
``descent`` (``book/descent``).
"""

from . import landscapes, rules, schedules
from . import lr_scheduler, swa_utils  # torch.optim's schedulers and weight averaging
from .clipping import clip_grad_norm, clip_grad_value
from .optim import (ASGD, LBFGS, OPTIMIZERS, SGD, Adadelta, Adafactor, Adagrad, Adam, Adamax,
                    AdamW, Muon, NAdam, Optimizer, RAdam, RMSprop, Rprop)

__all__ = ["rules", "schedules", "landscapes", "Optimizer", "SGD", "Adagrad", "RMSprop", "Adam",
           "AdamW", "NAdam", "RAdam", "Adamax", "Adadelta", "Rprop", "ASGD", "Adafactor",
           "Muon", "LBFGS", "OPTIMIZERS", "clip_grad_norm", "clip_grad_value"]
