"""The one table of recordable observables: name → unit, label, group, state variables needed, formula.

Everything that lists recordable quantities derives from `OBSERVABLES`: `RECORDABLE` and the
`SimulationResult` fields (`_result.py`), the observation of a state in every backend and the
state variables the fused kernel must keep (`_backends.py`), the keys of saved results
(`_io.py`, `_chunked.py`) and the plots' labels and units (`plot/_traces.py`). Adding a quantity
is one row here, computed from ``(params, y, I)`` with the vector-field functions.
"""

from typing import Callable, NamedTuple

import jax.numpy as jnp

from ._vector_field import conductances, currents


class Observable(NamedTuple):
    """One recordable quantity.

    - `unit`: its unit (``"mV"``, ``"1"``, ``"µA/cm²"``, ``"mS/cm²"``).
    - `label`: a short human description (plots, docs).
    - `group`: ``"state"``, ``"gate"``, ``"current"``, ``"conductance"`` or ``"stimulus"``;
      the plots draw one group per panel.
    - `needs`: the state variables (a subset of ``"Vmhn"``) it is computed from.
    - `compute`: ``(params, y, I) -> array``; `I` is the injected current (µA/cm²), or None
      when no recorded observable uses it (``uses_current`` False).
    - `uses_current`: whether `compute` reads `I` (the stimulus is then evaluated at the samples).
    """

    unit: str
    label: str
    group: str
    needs: str
    compute: Callable
    uses_current: bool = False


OBSERVABLES: dict[str, Observable] = {
    "V": Observable("mV", "membrane potential", "state", "V", lambda p, y, I: y.V),
    "m": Observable("1", "Na⁺ activation gate", "gate", "m", lambda p, y, I: y.m),
    "h": Observable("1", "Na⁺ inactivation gate", "gate", "h", lambda p, y, I: y.h),
    "n": Observable("1", "K⁺ activation gate", "gate", "n", lambda p, y, I: y.n),
    "INa": Observable("µA/cm²", "sodium current", "current", "Vmh", lambda p, y, I: currents(p, y).INa),
    "IK": Observable("µA/cm²", "potassium current", "current", "Vn", lambda p, y, I: currents(p, y).IK),
    "IL": Observable("µA/cm²", "leak current", "current", "V", lambda p, y, I: currents(p, y).IL),
    "gNa": Observable("mS/cm²", "sodium conductance gNa·m³h", "conductance", "mh",
                      lambda p, y, I: conductances(p, y).gNa),
    "gK": Observable("mS/cm²", "potassium conductance gK·n⁴", "conductance", "n",
                     lambda p, y, I: conductances(p, y).gK),
    "gL": Observable("mS/cm²", "leak conductance gL", "conductance", "", lambda p, y, I: conductances(p, y).gL),
    "I": Observable("µA/cm²", "injected current", "stimulus", "", lambda p, y, I: I, uses_current=True),
}

RECORDABLE: tuple[str, ...] = tuple(OBSERVABLES)
"""Names accepted by ``simulate(record=...)``, in table order (see `OBSERVABLES` for units)."""

STATE_VARIABLES = "Vmhn"


def names_in_group(group: str) -> tuple[str, ...]:
    """The recordable names of one `Observable.group`, in table order."""
    return tuple(name for name, o in OBSERVABLES.items() if o.group == group)


def observe(name: str, params, y, I, shape):
    """Observable `name` of state `y` (injected current `I`), broadcast to the population `shape`."""
    return jnp.broadcast_to(OBSERVABLES[name].compute(params, y, I), shape)


def uses_current(record) -> bool:
    """Whether any of the `record`ed observables reads the injected current."""
    return any(OBSERVABLES[name].uses_current for name in record)


def state_names(record) -> str:
    """The state variables (a subset of ``"Vmhn"``, in that order) the `record`ed observables need."""
    used = {v for name in record for v in OBSERVABLES[name].needs}
    return "".join(v for v in STATE_VARIABLES if v in used)
