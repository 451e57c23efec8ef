"""Plots of hh_jax results.

Matplotlib is imported lazily; every function takes ``ax=None`` (a new figure is made), passes
extra keyword arguments to matplotlib, and returns the Axes it drew on.
"""

from ._spikes import raster as raster
from ._spikes import rate_histogram as rate_histogram
from ._traces import conductances as conductances
from ._traces import currents as currents
from ._traces import gates as gates
from ._traces import stacked as stacked
from ._traces import voltage as voltage
