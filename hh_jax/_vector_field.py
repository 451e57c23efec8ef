"""The HH state, the vector field ``(t, y, args) -> dy/dt``, ionic currents and conductances."""

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._custom_types import PopArray, PopArrayLike
from ._params import HHParams
from . import _model


def _state_array(name: str, x):
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"HHState.{name} must be a number or a float array, got {x!r}.")
    try:
        return jnp.asarray(x)
    except TypeError as e:
        raise TypeError(f"HHState.{name} must be a number or a float array: {e}") from None


def _check_args(where: str, params, y) -> None:
    """Python-level type checks (run once at trace time) naming the bad argument."""
    if not isinstance(params, HHParams):
        raise TypeError(f"{where}: params must be an HHParams, got {type(params).__name__}.")
    if not isinstance(y, HHState):
        raise TypeError(f"{where}: y must be an HHState, got {type(y).__name__}.")


class HHState(eqx.Module):
    """The state of a population of HH neurons: membrane potential and the three gates.

    **Fields:**

    - `V`: membrane potential, mV, population shape.
    - `m`, `h`, `n`: gate open fractions, dimensionless in [0, 1], population shape.

    An `HHState` is a PyTree, so it can be the `y` of a Diffrax solve or the carry of a scan, and
    arithmetic on states is done with `jax.tree_util.tree_map`.

    **Example:** ``HHState(V=-65.0, m=0.05, h=0.6, n=0.32)``.
    """

    V: PopArray = eqx.field(converter=lambda x: _state_array("V", x))
    m: PopArray = eqx.field(converter=lambda x: _state_array("m", x))
    h: PopArray = eqx.field(converter=lambda x: _state_array("h", x))
    n: PopArray = eqx.field(converter=lambda x: _state_array("n", x))

    def __check_init__(self):
        shapes = {k: jnp.shape(getattr(self, k)) for k in ("V", "m", "h", "n")}
        try:
            np.broadcast_shapes(*shapes.values())
        except ValueError:
            detail = ", ".join(f"{k}{v}" for k, v in shapes.items())
            raise ValueError(f"HHState fields do not broadcast together: {detail}.") from None

    @property
    def shape(self) -> tuple[int, ...]:
        """The broadcast shape of the four variables (the population shape)."""
        return tuple(jnp.broadcast_shapes(*(jnp.shape(x) for x in (self.V, self.m, self.h, self.n))))

    def broadcast_to(self, shape: tuple[int, ...]) -> "HHState":
        """This state with every variable broadcast to `shape`."""
        b = lambda x: jnp.broadcast_to(x, shape)
        return HHState(V=b(self.V), m=b(self.m), h=b(self.h), n=b(self.n))


class Currents(eqx.Module):
    """Ionic current densities, µA/cm², outward positive (``I_x = g_x (V − E_x)``).

    A negative ``INa`` is the inward sodium current of the spike's upstroke. (The course notebook,
    seed 004, plots the opposite sign, ``g (E − V)``.)
    """

    INa: PopArray
    IK: PopArray
    IL: PopArray

    @property
    def total(self) -> PopArray:
        """``INa + IK + IL``, µA/cm²."""
        return self.INa + self.IK + self.IL


class Conductances(eqx.Module):
    """Instantaneous conductance densities, mS/cm²: ``gNa·m³h``, ``gK·n⁴``, ``gL``."""

    gNa: PopArray
    gK: PopArray
    gL: PopArray


def conductances(params: HHParams, y: HHState) -> Conductances:
    """Instantaneous conductances (mS/cm²) of a state: ``gNa·m³h``, ``gK·n⁴`` and ``gL``.

    **Arguments:** `params`: `HHParams`; `y`: `HHState` (any population shape).

    **Returns:** a `Conductances` with fields broadcast to the population shape.

    **Example:** ``conductances(HHParams(), resting_state(HHParams())).gK``.
    """
    _check_args("conductances", params, y)
    shape = jnp.broadcast_shapes(jnp.shape(y.V), jnp.shape(params.gL))
    g_na, g_k, g_l = _model.conductances(params, y.m, y.h, y.n)
    return Conductances(gNa=g_na, gK=g_k, gL=jnp.broadcast_to(g_l, shape))


def currents(params: HHParams, y: HHState) -> Currents:
    """Ionic current densities (µA/cm², outward positive) of a state.

    ``INa = gNa·m³h·(V − ENa)``, ``IK = gK·n⁴·(V − EK)``, ``IL = gL·(V − EL)``.

    **Arguments:** `params`: `HHParams`; `y`: `HHState`.

    **Returns:** a `Currents`.

    **Example:** ``currents(HHParams(), y).total`` is the net ionic current.
    """
    _check_args("currents", params, y)
    g = conductances(params, y)
    return Currents(
        INa=g.gNa * (y.V - params.ENa),
        IK=g.gK * (y.V - params.EK),
        IL=g.gL * (y.V - params.EL),
    )


def derivatives(params: HHParams, y: HHState, I: PopArrayLike) -> HHState:
    """Time derivatives of the state for an injected current `I` (µA/cm²).

    **Arguments:**

    - `params`: `HHParams`.
    - `y`: `HHState`.
    - `I`: injected current density, µA/cm², broadcastable to the population shape.

    **Returns:** an `HHState` of derivatives: dV/dt in mV/ms, dm/dt etc. in 1/ms.
    """
    _check_args("derivatives", params, y)
    if isinstance(I, (str, bytes)) or I is None:
        raise TypeError(f"derivatives: I (uA/cm^2) must be a number or a float array, got {I!r}.")
    try:
        np.broadcast_shapes(jnp.shape(I), params.pop_shape, y.shape)
    except ValueError:
        raise ValueError(
            f"derivatives: shapes do not broadcast: I {jnp.shape(I)}, params {params.pop_shape}, "
            f"y {y.shape}."
        ) from None
    V = y.V
    am, bm, ah, bh, an, bn = _model.gate_rates(V, _model.rate_factor(params))
    i_ion = currents(params, y).total
    return HHState(
        V=(I - i_ion) / params.C,
        m=am * (1.0 - y.m) - bm * y.m,
        h=ah * (1.0 - y.h) - bh * y.h,
        n=an * (1.0 - y.n) - bn * y.n,
    )


def injected_current(stimulus: Any, t) -> PopArray:
    """Evaluate ``stimulus`` at time `t` (ms): a stimulus object, or a constant current."""
    from ._stimulus import AbstractStimulus  # local: the stimulus module sits beside this one

    if isinstance(stimulus, AbstractStimulus):
        return stimulus(t)
    return jnp.asarray(stimulus)


def vector_field(t, y: HHState, args) -> HHState:
    """The HH vector field, in the ``(t, y, args)`` form of `diffrax.ODETerm`.

    **Arguments:**

    - `t`: time, ms (scalar).
    - `y`: `HHState`.
    - `args`: a pair ``(params, stimulus)``: an `HHParams` and either an `AbstractStimulus`
      or a constant current density (µA/cm², scalar or population-shaped array).

    **Returns:** ``dy/dt`` as an `HHState` (mV/ms and 1/ms).

    **Example:**

    ```python
    import diffrax, hh_jax
    term = diffrax.ODETerm(hh_jax.vector_field)
    args = (hh_jax.HHParams(), hh_jax.Constant(10.0))
    ```
    """
    params, stimulus = unpack_args("vector_field", args)
    return derivatives(params, y, injected_current(stimulus, t))


def unpack_args(where: str, args) -> tuple[HHParams, Any]:
    """``args = (params, stimulus)``, checked; errors name `where` and ``args``."""
    if not isinstance(args, (tuple, list)) or len(args) != 2:
        raise TypeError(
            f"{where}: args must be a pair (params, stimulus), got {type(args).__name__}"
            + (f" of length {len(args)}" if isinstance(args, (tuple, list)) else "")
            + "."
        )
    params, stimulus = args
    if not isinstance(params, HHParams):
        raise TypeError(f"{where}: args[0] must be an HHParams, got {type(params).__name__}.")
    return params, stimulus


def gate_steady_states(V: PopArray) -> tuple[PopArray, PopArray, PopArray]:
    """(m∞, h∞, n∞) at membrane potential `V` (mV) (independent of the rate factor)."""
    return _model.steady_states(V)
