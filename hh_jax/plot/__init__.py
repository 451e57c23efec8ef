"""Plots of hh_jax results.

Matplotlib is imported lazily; every function takes ``ax=None`` (a new figure is made), passes
extra keyword arguments to matplotlib, and returns the Axes it drew on.
"""

from ._traces import gates as gates
from ._traces import voltage as voltage
from ._dynamics import bifurcation as bifurcation
from ._dynamics import eigenvalues as eigenvalues
from ._dynamics import fi as fi
from ._dynamics import phase_plane as phase_plane
