"""hh_jax: a JAX-accelerated, differentiable Hodgkin–Huxley simulator.

Units everywhere: mV, ms, µA/cm², mS/cm², µF/cm² (see ``hh_jax._custom_types.UNITS``).
"""

from ._custom_types import UNITS as UNITS
from ._backends import AbstractBackend as AbstractBackend
from ._backends import DiffraxAdapter as DiffraxAdapter
from ._backends import FusedCPU as FusedCPU
from ._backends import PallasGPU as PallasGPU
from ._backends import ScanLoop as ScanLoop
from ._chunked import ChunkedResult as ChunkedResult
from ._chunked import simulate_chunked as simulate_chunked
from ._initial_state import brainpy_initial_state as brainpy_initial_state
from ._io import load_module as load_module
from ._io import load_params as load_params
from ._io import load_result as load_result
from ._io import PARAM_UNITS as PARAM_UNITS
from ._io import params_from_dict as params_from_dict
from ._io import params_to_dict as params_to_dict
from ._io import save_module as save_module
from ._io import save_params as save_params
from ._io import save_result as save_result
from ._initial_state import equilibrium as equilibrium
from ._initial_state import steady_state_at as steady_state_at
from ._params import HHParams as HHParams
from ._params import PRESETS as PRESETS
from ._rates import alpha_h as alpha_h
from ._rates import alpha_m as alpha_m
from ._rates import alpha_n as alpha_n
from ._rates import bernoulli as bernoulli
from ._rates import beta_h as beta_h
from ._rates import beta_m as beta_m
from ._rates import beta_n as beta_n
from ._rates import exprel as exprel
from ._rates import steady_state as steady_state
from ._rates import time_constant as time_constant
from ._observables import Observable as Observable
from ._observables import OBSERVABLES as OBSERVABLES
from ._observables import RECORDABLE as RECORDABLE
from ._result import SimulationResult as SimulationResult
from ._simulate import simulate as simulate
from ._sharding import simulate_sharded as simulate_sharded
from ._sharding import use_cpu_devices as use_cpu_devices
from ._spikes import SPIKE_INTERPOLATIONS as SPIKE_INTERPOLATIONS
from ._steppers import STEPPERS as STEPPERS
from ._steppers import AbstractStepper as AbstractStepper
from ._steppers import Euler as Euler
from ._steppers import ExpEuler as ExpEuler
from ._steppers import ExpMidpoint as ExpMidpoint
from ._steppers import ExpRK4 as ExpRK4
from ._steppers import RK4 as RK4
from ._stimulus import AbstractStimulus as AbstractStimulus
from ._stimulus import Constant as Constant
from ._sampled import OUNoise as OUNoise
from ._waveforms import PulseTrain as PulseTrain
from ._waveforms import Ramp as Ramp
from ._sampled import Sampled as Sampled
from ._stimulus import Scaled as Scaled
from ._waveforms import Sections as Sections
from ._waveforms import Sine as Sine
from ._waveforms import Square as Square
from ._stimulus import Stack as Stack
from ._waveforms import Step as Step
from ._stimulus import Sum as Sum
from ._sampled import WhiteNoise as WhiteNoise
from ._vector_field import Conductances as Conductances
from ._vector_field import Currents as Currents
from ._vector_field import HHState as HHState
from ._vector_field import conductances as conductances
from ._vector_field import currents as currents
from ._vector_field import derivatives as derivatives
from ._vector_field import vector_field as vector_field

from . import analysis as analysis
from . import fit as fit  # noqa: E402  (subpackage: hh_jax.fit.X)

from ._version import __version__ as __version__
