"""The result of a simulation: sample times, recorded traces, spikes, final state."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._custom_types import Array, Float, Int, PopArray
from ._observables import OBSERVABLES, RECORDABLE
from ._vector_field import HHState


class SimulationResult(eqx.Module):
    """What :func:`simulate` returns.

    **Fields:**

    - `t`: sample times, ms, shape ``[samples]`` (``t0``, then every `record_every`-th step);
      empty when nothing is recorded (``record=()``).
    - one field per name of `hh_jax.RECORDABLE` (``V``, ``m``, ``h``, ``n``, ``INa``, ``IK``,
      ``IL``, ``gNa``, ``gK``, ``gL``, ``I``; units in `hh_jax.OBSERVABLES`): the recorded trace,
      shape ``[samples, *pop]``, or ``None`` if not recorded.
    - `spike_count`: spikes per neuron (upward crossings of ``V_th``), int, ``[*pop]``.
    - `spike_times`: ms, ``[max_spikes, *pop]``, each neuron's spike times in order, padded with
      ``+inf``; located within the step by cubic Hermite (default) or linear interpolation
      (scan steppers) or on the solver's dense output (Diffrax solvers); differentiable.
    - `final_state`: the `HHState` after the last step.
    - `finite`: bool scalar, False if any state variable became NaN/Inf (with ``throw=True``
      the run raises instead).
    - `duration`, `dt`: ms (static).
    """

    t: Float[Array, " samples"]
    spike_count: Int[Array, "*pop"]
    spike_times: Float[Array, "max_spikes *pop"]
    final_state: HHState
    finite: Array
    # One optional trace field per row of the observables table (V, m, h, n, INa, ..., I).
    __annotations__.update({_name: Array | None for _name in OBSERVABLES})
    vars().update({_name: None for _name in OBSERVABLES})
    duration: float = eqx.field(static=True, default=0.0)
    dt: float = eqx.field(static=True, default=0.0)

    @property
    def firing_rate(self) -> PopArray:
        """Mean firing rate per neuron over the whole run, Hz."""
        return self.spike_count.astype(self.final_state.V.dtype) / (self.duration / 1000.0)

    @property
    def spike_overflow(self) -> Array:
        """True where a neuron fired more spikes than `spike_times` has rows (counts stay right)."""
        return self.spike_count > self.spike_times.shape[0]

    def trace(self, name: str) -> Array:
        """A recorded trace by name; `ValueError` naming it if it was not recorded."""
        if name not in RECORDABLE:
            raise ValueError(f"unknown variable {name!r}; recordable: {list(RECORDABLE)}.")
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"{name!r} was not recorded; pass record=(..., {name!r}) to simulate.")
        return value

    def spike_table(self) -> np.ndarray:
        """All spikes as a NumPy array ``[K, 2]``: (flat neuron index, time in ms), by time.

        **Example:** ``np.savetxt("spikes.csv", r.spike_table(), header="neuron,time_ms")``.
        """
        times = np.asarray(self.spike_times)
        times = times.reshape(times.shape[0], -1)
        slot, neuron = np.nonzero(np.isfinite(times))
        out = np.stack([neuron.astype(float), times[slot, neuron]], axis=1)
        return out[np.lexsort((out[:, 0], out[:, 1]))]


def state_is_finite(y: HHState) -> Array:
    """True (bool scalar) if every variable of `y` is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in (y.V, y.m, y.h, y.n)]))


def maybe_throw(result: SimulationResult, throw: bool) -> SimulationResult:
    """`result`, raising through `eqx.error_if` (under jit) if `throw` and it is not finite."""
    if throw:
        result = eqx.error_if(
            result,
            jnp.logical_not(result.finite),
            "hh_jax.simulate: the state became NaN/Inf (check parameters, current and dt; "
            "an explicit stepper at too large a dt diverges).",
        )
    return result
