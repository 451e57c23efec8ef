"""Gradient-based fitting of HH parameters to recordings.

Choose the fitted fields and their bounds (`ParamSpace`), build a loss (`TraceObjective`,
`SpikeTimeObjective`, or your own from the pure losses), and call `optimize`: K starts are optimised
together by one vmapped, jitted Optax step. Recordings load with `load_recording`.
"""

from ._data import Recording as Recording
from ._files import load_abf as load_abf
from ._files import load_nwb as load_nwb
from ._files import load_recording as load_recording
from ._files import save_recording as save_recording
from ._fit import FitResult as FitResult
from ._fit import optimize as optimize
from ._fit import polish as polish
from ._fit import value_and_grad as value_and_grad
from ._gradients import AbstractGradientMode as AbstractGradientMode
from ._gradients import ForwardMode as ForwardMode
from ._gradients import default_mode as default_mode
from ._gradients import ReverseMode as ReverseMode
from ._losses import soft_spike_count as soft_spike_count
from ._losses import spike_time_loss as spike_time_loss
from ._losses import summary_loss as summary_loss
from ._losses import trace_mse as trace_mse
from ._losses import weighted_sum as weighted_sum
from ._losses import window_stats as window_stats
from ._objective import AbstractObjective as AbstractObjective
from ._objective import SpikeTimeObjective as SpikeTimeObjective
from ._objective import TraceObjective as TraceObjective
from ._transforms import AbstractTransform as AbstractTransform
from ._transforms import DEFAULT_BOUNDS as DEFAULT_BOUNDS
from ._transforms import FITTABLE as FITTABLE
from ._transforms import Interval as Interval
from ._transforms import ParamSpace as ParamSpace
from ._transforms import Positive as Positive
from ._area import estimate_area as estimate_area
from ._area import fitted_area as fitted_area
