"""Plots of hh_jax results.

Matplotlib is imported lazily; every function takes ``ax=None`` (a new figure is made), passes
extra keyword arguments to matplotlib, and returns the Axes it drew on.
"""

from ._traces import gates as gates
from ._traces import voltage as voltage
from ._fit import fit_overlay as fit_overlay
from ._fit import loss_curve as loss_curve
from ._fit import parameter_spread as parameter_spread
