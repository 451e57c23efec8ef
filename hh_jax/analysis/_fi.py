"""Firing rate against injected current (f-I curves) from simulations, vmapped over currents."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._custom_types import Array, Float
from .._initial_state import resting_state
from .._params import HHParams
from .._simulate import simulate
from .._steppers import AbstractStepper, ExpEuler
from .._vector_field import HHState
from .._validate import as_number, as_numbers
from ._jacobian import _check_single


def _check_field(where: str, value, *, positive: bool = False) -> None:
    """A start's setting must be a finite (positive) number; a traced one passes."""
    if not isinstance(value, jax.core.Tracer):
        as_number(where, value, positive=positive)


class AbstractStart(eqx.Module):
    """Where each simulation of an f-I curve starts; ``start(params, currents)`` → `HHState` ``[k]``."""

    @abc.abstractmethod
    def __call__(self, params: HHParams, currents: Float[Array, " k"]) -> HHState:
        """Initial states for one neuron at each current (`HHState`, each field ``[k]``)."""


class FromRest(AbstractStart):
    """Start at the equilibrium of a holding current `I_hold` (µA/cm², default 0): a current step.

    This is the classical protocol "starting from rest".
    """

    I_hold: float = 0.0

    def __check_init__(self):
        _check_field("FromRest.I_hold (uA/cm^2)", self.I_hold)

    def __call__(self, params, currents):
        y = resting_state(params, jnp.asarray(self.I_hold, params.dtype))
        return y.broadcast_to(currents.shape)


class FromEquilibrium(AbstractStart):
    """Start at the equilibrium of each test current, displaced by `kick` mV (default 0.1).

    The neuron fires only where that equilibrium is unstable (and the kick has time to grow):
    in the bistable range (between the fold of cycles and the Hopf point) it stays quiet.
    """

    kick: float = 0.1

    def __check_init__(self):
        _check_field("FromEquilibrium.kick (mV)", self.kick)

    def __call__(self, params, currents):
        y = jax.vmap(lambda I: resting_state(params, I))(currents)
        return HHState(V=y.V + self.kick, m=y.m, h=y.h, n=y.n)


class FromSpiking(AbstractStart):
    """Start from an ongoing spike train: the state after `settle` ms (default 200) at `I_drive`.

    With `I_drive` (µA/cm², default 20) inside the repetitive-firing range, the neuron keeps
    firing wherever a stable periodic orbit exists: the bistable range shows up as firing at
    currents where `FromEquilibrium` stays quiet.
    """

    I_drive: float = 20.0
    settle: float = 200.0

    def __check_init__(self):
        _check_field("FromSpiking.I_drive (uA/cm^2)", self.I_drive)
        _check_field("FromSpiking.settle (ms)", self.settle, positive=True)

    def __call__(self, params, currents):
        r = simulate(params, self.I_drive, duration=self.settle, dt=0.01, record=(), max_spikes=0)
        return r.final_state.broadcast_to(currents.shape)


class FICurve(eqx.Module):
    """A firing-rate curve.

    **Fields:** `I` (µA/cm², ``[k]``), `rate` (Hz, ``[k]``: sustained rate in the measurement
    window, 0 where firing stops), `spike_count` (spikes in the window, ``[k]``).
    """

    I: Array
    rate: Array
    spike_count: Array

    def onset(self) -> float:
        """The lowest current with sustained firing, µA/cm² (NaN if none)."""
        I, r = np.asarray(self.I), np.asarray(self.rate)
        on = np.nonzero(r > 0)[0]
        return float(I[on[0]]) if on.size else float("nan")

    def minimum_rate(self) -> float:
        """The lowest non-zero rate, Hz (NaN if it never fires)."""
        r = np.asarray(self.rate)
        return float(r[r > 0].min()) if np.any(r > 0) else float("nan")

    def block_onset(self) -> float:
        """The lowest current above the firing range where firing has stopped again (NaN if none)."""
        I, r = np.asarray(self.I), np.asarray(self.rate)
        on = np.nonzero(r > 0)[0]
        if not on.size:
            return float("nan")
        off = np.nonzero((r == 0) & (np.arange(len(r)) > on[0]))[0]
        return float(I[off[0]]) if off.size else float("nan")


def fi_curve(
    params: HHParams,
    currents,
    *,
    start: AbstractStart = FromRest(),
    transient: float = 300.0,
    window: float = 300.0,
    dt: float = 0.01,
    stepper: AbstractStepper = ExpEuler(),
) -> FICurve:
    """Steady-state firing rate against a constant current, from simulations vmapped over currents.

    Each current gets its own run (`jax.vmap` of :func:`hh_jax.simulate`) of
    ``transient + window`` ms from ``start(params, currents)``. Spikes are upward crossings of
    ``params.V_th``. The rate is measured in the window as (spikes − 1) / (last − first spike
    time); it counts as *sustained* only if the last spike comes within two mean intervals of the
    window's end, else (and with fewer than 2 spikes) the rate is 0.

    **Arguments:**

    - `params`: `HHParams` of one neuron.
    - `currents`: 1-D array of currents, µA/cm².
    - `start`: an `AbstractStart`. Default `FromRest()` (a step from rest at 0 µA/cm²).
    - `transient`: discarded time, ms. Default 300.
    - `window`: measurement time, ms. Default 300.
    - `dt`: time step, ms. Default 0.01.
    - `stepper`: scan stepper. Default `ExpEuler()`.

    **Returns:** an `FICurve`.

    **Example:** ``fi_curve(HHParams.hh1952(), jnp.array([5.0, 10.0])).rate`` → ``[0, 68.3]`` Hz.
    """
    _check_single(params)
    if not isinstance(start, AbstractStart):
        raise TypeError(f"start must be an AbstractStart (e.g. FromRest()), got {start!r}.")
    if not isinstance(stepper, AbstractStepper):
        raise TypeError(f"stepper must be an AbstractStepper (e.g. ExpEuler()), got {stepper!r}.")
    for name, v in (("transient", transient), ("window", window), ("dt", dt)):
        as_number(name, v, unit="ms", positive=True)
    I = as_numbers("currents (uA/cm^2)", currents)
    if I.ndim != 1 or I.size < 1 or not np.all(np.isfinite(I)):
        raise ValueError("currents must be a non-empty 1-D sequence of finite numbers (uA/cm^2).")
    I = jnp.asarray(I, params.dtype)
    y0 = start(params, I)
    duration = float(transient) + float(window)
    S = int(np.ceil(window / 1.0)) + int(np.ceil(transient / 1.0)) + 2  # ≤ 1 kHz

    def one(I1, y1):
        r = simulate(params, I1, duration=duration, dt=dt, y0=y1, record=(), max_spikes=S, stepper=stepper)
        return r.spike_times

    times = jax.vmap(one)(I, y0)  # [k, S]
    t0, t1 = float(transient), duration
    inwin = jnp.isfinite(times) & (times >= t0)
    count = jnp.sum(inwin, axis=1)
    first = jnp.min(jnp.where(inwin, times, jnp.inf), axis=1)
    last = jnp.max(jnp.where(inwin, times, -jnp.inf), axis=1)
    span = jnp.where(count >= 2, last - first, 1.0)
    isi = span / jnp.maximum(count - 1, 1).astype(span.dtype)
    sustained = (count >= 2) & (t1 - last < 2.0 * isi)
    rate = jnp.where(sustained, 1000.0 / isi, 0.0)
    return FICurve(I=I, rate=rate, spike_count=count)
