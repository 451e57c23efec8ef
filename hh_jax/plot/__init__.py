"""Plots of hh_jax results.

Matplotlib is imported lazily; every function takes ``ax=None`` (a new figure is made), passes
extra keyword arguments to matplotlib, and returns the Axes it drew on.
"""

from ._spikes import raster as raster
from ._spikes import rate_histogram as rate_histogram
from ._traces import conductance_traces as conductance_traces
from ._traces import current_traces as current_traces
from ._traces import gates as gates
from ._traces import stacked as stacked
from ._traces import traces as traces
from ._traces import voltage as voltage
from ._dynamics import bifurcation as bifurcation
from ._dynamics import spectrum as spectrum
from ._dynamics import fi as fi
from ._dynamics import phase_portrait as phase_portrait
from ._fit import fit_overlay as fit_overlay
from ._fit import loss_curve as loss_curve
from ._fit import parameter_spread as parameter_spread
