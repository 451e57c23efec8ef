"""Injected-current stimuli: pure functions of time, summable with ``+``, broadcast over neurons.

Every stimulus is an `eqx.Module` whose call ``stimulus(t)`` returns the injected current density
in µA/cm² at time `t` (ms), with a shape that broadcasts to the population. Amplitudes are array
fields, so `jax.grad` flows into them. Discontinuities are exposed by :meth:`jump_times` so that
adaptive solvers can stop on them.

This module holds the interface, the constant current and the combinators (sums, scaling,
stacking); the waveforms are in `_waveforms.py`, the sampled and noise stimuli in `_sampled.py`.
"""

import abc
from typing import Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._custom_types import Array, PopArray, PopArrayLike
from ._validate import as_float_array

class AbstractStimulus(eqx.Module):
    """An injected current density I(t), µA/cm², as a pure function of time t (ms).

    Subclasses implement ``__call__(t)`` and, where the current jumps, :meth:`jump_times`; a
    stimulus that does not depend on time at all overrides :attr:`time_invariant`. Stimuli add
    with ``+`` (and subtract, negate, and scale by a number).
    """

    @property
    def time_invariant(self) -> bool:
        """True if ``self(t)`` is the same for every `t` (known in Python, before any tracing).

        False by default: only stimuli that are constant *by construction* say True (`Constant`,
        and sums, scalings and stacks of time-invariant stimuli). Consumers such as the fused
        kernel tabulate a time-invariant stimulus once instead of once per step; they must
        never infer time-invariance from a table's or an array's shape.
        """
        return False

    @abc.abstractmethod
    def __call__(self, t) -> PopArray:
        """The current density at time `t` (ms, scalar), µA/cm²."""

    @abc.abstractmethod
    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        """Times (ms) in ``[t0, t1]`` where the current is discontinuous, sorted, 1-D NumPy.

        Abstract, so that no stimulus (nor a wrapper around one) can silently report none:
        adaptive solvers step exactly onto these times and would otherwise step over a pulse.
        `t0`, `t1` (ms) may be infinite where the stimulus has finitely many jumps; a periodic
        one raises `ValueError` for an infinite window.
        """

    def grid_dt(self) -> tuple[float, ...]:
        """Sampling steps (ms) of any sampled or noise parts; empty for continuous stimuli."""
        return ()

    def grid_span(self) -> tuple[tuple[float, float], ...]:
        """Time spans (ms) covered by sampled parts, as (start, end) pairs."""
        return ()

    def __add__(self, other) -> "AbstractStimulus":
        return Sum((self, as_stimulus(other)))

    def __radd__(self, other) -> "AbstractStimulus":
        return Sum((as_stimulus(other), self))

    def __sub__(self, other) -> "AbstractStimulus":
        return Sum((self, Scaled(as_stimulus(other), -1.0)))

    def __rsub__(self, other) -> "AbstractStimulus":
        return Sum((as_stimulus(other), Scaled(self, -1.0)))

    def __neg__(self) -> "AbstractStimulus":
        return Scaled(self, -1.0)

    def __mul__(self, factor) -> "AbstractStimulus":
        if isinstance(factor, AbstractStimulus):
            raise TypeError("stimuli can be scaled by numbers, not multiplied together.")
        return Scaled(self, factor)

    __rmul__ = __mul__


def in_window(times, t0: float, t1: float) -> np.ndarray:
    """The sorted distinct `times` (ms) within ``[t0, t1]``."""
    times = np.unique(np.asarray(times, float).ravel())
    return times[(times >= t0) & (times <= t1)]


def as_stimulus(x) -> AbstractStimulus:
    """A stimulus from a stimulus or a constant current (µA/cm², scalar or population array)."""
    if isinstance(x, AbstractStimulus):
        return x
    return Constant(x)


class Constant(AbstractStimulus):
    """A constant current.

    **Arguments:** `amplitude`: µA/cm², scalar or population-shaped array.

    **Example:** ``Constant(10.0)``; ``Constant(jnp.array([5.0, 10.0]))`` for two neurons.
    """

    amplitude: PopArray

    def __init__(self, amplitude: PopArrayLike):
        self.amplitude = as_float_array("Constant.amplitude", amplitude, finite=True)

    def __call__(self, t) -> PopArray:
        return self.amplitude

    @property
    def time_invariant(self) -> bool:
        return True

    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        return np.zeros((0,))


class Sum(AbstractStimulus):
    """The sum of several stimuli (what ``a + b`` builds)."""

    terms: tuple[AbstractStimulus, ...]

    def __init__(self, terms: Sequence[AbstractStimulus]):
        flat = []
        for s in terms:
            s = as_stimulus(s)
            flat.extend(s.terms if isinstance(s, Sum) else (s,))
        if not flat:
            raise ValueError("Sum needs at least one stimulus.")
        self.terms = tuple(flat)

    def __call__(self, t) -> PopArray:
        out = self.terms[0](t)
        for s in self.terms[1:]:
            out = out + s(t)
        return out

    @property
    def time_invariant(self) -> bool:
        return all(s.time_invariant for s in self.terms)

    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        return in_window(np.concatenate([s.jump_times(t0, t1) for s in self.terms]), t0, t1)

    def grid_dt(self) -> tuple[float, ...]:
        return tuple(d for s in self.terms for d in s.grid_dt())

    def grid_span(self) -> tuple[tuple[float, float], ...]:
        return tuple(sp for s in self.terms for sp in s.grid_span())


class AbstractWrapper(AbstractStimulus):
    """A stimulus derived from one other stimulus (`stimulus`), whose contracts it forwards:
    time invariance, jump times and sampling grid. A subclass overrides those its transform
    changes (a time shift moves the jump times and the grid)."""

    stimulus: eqx.AbstractVar[AbstractStimulus]

    @property
    def time_invariant(self) -> bool:
        return self.stimulus.time_invariant

    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        return self.stimulus.jump_times(t0, t1)

    def grid_dt(self) -> tuple[float, ...]:
        return self.stimulus.grid_dt()

    def grid_span(self) -> tuple[tuple[float, float], ...]:
        return self.stimulus.grid_span()


class Scaled(AbstractWrapper):
    """A stimulus times a (differentiable) factor (what ``2.0 * s`` builds)."""

    stimulus: AbstractStimulus
    factor: Array

    def __init__(self, stimulus: AbstractStimulus, factor):
        self.stimulus = as_stimulus(stimulus)
        self.factor = as_float_array("Scaled.factor", factor, finite=True)

    def __call__(self, t) -> PopArray:
        return self.factor * self.stimulus(t)


class Stack(AbstractStimulus):
    """One stimulus per neuron, stacked along a new last (population) axis.

    ``Stack([s0, s1])(t)`` has shape ``(*s0(t).shape, 2)``: neuron ``i`` receives ``s_i``. This
    is how seed 002 drives two neurons with different pulse trains.

    **Example:** ``Stack([PulseTrain([500.0], widths=5.0, amplitudes=5.0), Constant(0.0)])``.
    """

    stimuli: tuple[AbstractStimulus, ...]

    def __init__(self, stimuli: Sequence[AbstractStimulus]):
        if len(stimuli) == 0:
            raise ValueError("Stack needs at least one stimulus.")
        self.stimuli = tuple(as_stimulus(s) for s in stimuli)

    def __call__(self, t) -> PopArray:
        vals = [s(t) for s in self.stimuli]
        shape = jnp.broadcast_shapes(*(jnp.shape(v) for v in vals))
        return jnp.stack([jnp.broadcast_to(v, shape) for v in vals], axis=-1)

    @property
    def time_invariant(self) -> bool:
        return all(s.time_invariant for s in self.stimuli)

    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        return in_window(np.concatenate([s.jump_times(t0, t1) for s in self.stimuli]), t0, t1)

    def grid_dt(self) -> tuple[float, ...]:
        return tuple(d for s in self.stimuli for d in s.grid_dt())

    def grid_span(self) -> tuple[tuple[float, float], ...]:
        return tuple(sp for s in self.stimuli for sp in s.grid_span())
