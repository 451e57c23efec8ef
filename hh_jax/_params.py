"""HH parameters as an Equinox PyTree."""

import dataclasses
import functools
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._custom_types import PopArray, PopArrayLike
from ._validate import as_float_array, show


def _float_field(name: str, default: float, unit: str, *, since_v1: bool = False):
    """A keyword-only field holding a float array; the converter's errors name ``HHParams.<name>``.
    `unit`: its unit as written in files (ASCII); `since_v1`: added after version 1 of the JSON
    format (a file without it loads with the default, which keeps the old behaviour)."""
    return eqx.field(
        default=default, converter=functools.partial(as_float_array, f"HHParams.{name}"), kw_only=True,
        metadata={"unit": unit, "since_v1": since_v1},
    )


class HHParams(eqx.Module):
    """Parameters of the Hodgkin–Huxley point neuron (per unit membrane area).

    Every field is a scalar or an array; all fields broadcast together to the *population
    shape*, so a heterogeneous population is simply arrays in some fields. The defaults are the
    values of the seeds (BrainPy's ``brainpy.dyn.HH``, the BrainState tutorial): the HH model with
    voltages in absolute mV (rest near −65 mV) and a small leak. :meth:`hh1952` gives the
    textbook 1952 values (``gL = 0.3``, rest −64.996 mV).

    **Arguments** (all keyword-only):

    - `C`: membrane capacitance, µF/cm², > 0. Default 1.0.
    - `gNa`: maximal sodium conductance, mS/cm², ≥ 0. Default 120.0.
    - `ENa`: sodium reversal potential, mV. Default 50.0.
    - `gK`: maximal potassium conductance, mS/cm², ≥ 0. Default 36.0.
    - `EK`: potassium reversal potential, mV. Default −77.0.
    - `gL`: leak conductance, mS/cm², ≥ 0. Default 0.03.
    - `EL`: leak reversal potential, mV. Default −54.387.
    - `V_th`: spike-detection threshold (upward crossing), mV. Default 20.0.
    - `temperature`: °C, > −273.15. Default 6.3 (the temperature of the HH rates). Every rate
      is multiplied by ``φ = q10^((temperature − 6.3)/10)``, in every backend; fittable.
    - `q10`: the rates' temperature coefficient, dimensionless, > 0. Default 3.0.

    Invalid values (non-finite, ``C ≤ 0``, a negative conductance, fields that do not broadcast
    together) raise `ValueError` naming the field; bools, strings, complex numbers and
    ``longdouble`` (which JAX cannot hold) raise `TypeError` naming the field. Checks run on
    concrete values only; inside `jax.jit`/`jax.grad` the values are traced and checked by the
    simulation instead (C > 0, conductances ≥ 0, a finite V_th: see `simulate`'s `throw`).

    **Example:**

    ```python
    import jax.numpy as jnp
    import hh_jax

    p = hh_jax.HHParams(gNa=jnp.linspace(100.0, 140.0, 5))  # 5 neurons
    p.pop_shape  # (5,)
    ```
    """

    C: PopArray = _float_field("C", 1.0, "uF/cm^2")
    gNa: PopArray = _float_field("gNa", 120.0, "mS/cm^2")
    ENa: PopArray = _float_field("ENa", 50.0, "mV")
    gK: PopArray = _float_field("gK", 36.0, "mS/cm^2")
    EK: PopArray = _float_field("EK", -77.0, "mV")
    gL: PopArray = _float_field("gL", 0.03, "mS/cm^2")
    EL: PopArray = _float_field("EL", -54.387, "mV")
    V_th: PopArray = _float_field("V_th", 20.0, "mV")
    temperature: PopArray = _float_field("temperature", 6.3, "degC", since_v1=True)
    q10: PopArray = _float_field("q10", 3.0, "1", since_v1=True)

    FIELDS: ClassVar[tuple[str, ...]]
    """The field names in declaration order (derived from the dataclass fields, read-only)."""

    def __check_init__(self):
        shapes = {}
        for name in self.FIELDS:
            value = getattr(self, name)
            shapes[name] = jnp.shape(value)
            if isinstance(value, jax.core.Tracer):
                continue
            arr = np.asarray(value)
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"HHParams.{name} must be finite, got {show(arr)}.")
        check_values(self)
        try:
            np.broadcast_shapes(*shapes.values())
        except ValueError:
            detail = ", ".join(f"{k}{v}" for k, v in shapes.items() if v != ())
            raise ValueError(f"HHParams fields do not broadcast together: {detail}.") from None

    @property
    def pop_shape(self) -> tuple[int, ...]:
        """The population shape: the broadcast shape of all fields."""
        return tuple(np.broadcast_shapes(*(jnp.shape(getattr(self, f)) for f in self.FIELDS)))

    @property
    def dtype(self):
        """The common floating dtype of the fields."""
        return jnp.result_type(*(getattr(self, f) for f in self.FIELDS))

    def replace(self, **changes: PopArrayLike) -> "HHParams":
        """A copy with some fields replaced (validated like the constructor).

        **Arguments:** any of the field names with new values (units as in the class).

        **Returns:** a new `HHParams`.

        **Example:** ``HHParams.hh1952().replace(gK=30.0)``.
        """
        unknown = set(changes) - set(self.FIELDS)
        if unknown:
            raise ValueError(
                f"HHParams has no field(s) {sorted(unknown)}; fields are {list(self.FIELDS)}."
            )
        return dataclasses.replace(self, **changes)

    def broadcast(self) -> "HHParams":
        """A copy whose fields all have the full population shape."""
        shape = self.pop_shape
        return HHParams(**{f: jnp.broadcast_to(getattr(self, f), shape) for f in self.FIELDS})

    def astype(self, dtype) -> "HHParams":
        """A copy with every field cast to ``dtype`` (e.g. ``jnp.float32``)."""
        try:
            dtype = jnp.dtype(dtype)
        except TypeError:
            raise TypeError(f"HHParams.astype: dtype must be a float dtype, got {dtype!r}.") from None
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"HHParams.astype: dtype must be a float dtype, got {dtype}.")
        return HHParams(**{f: jnp.asarray(getattr(self, f), dtype) for f in self.FIELDS})

    @classmethod
    def brainpy(cls, **overrides: PopArrayLike) -> "HHParams":
        """The seeds' parameters (BrainPy ``brainpy.dyn.HH`` defaults); same as ``HHParams()``.

        ENa 50 mV, gNa 120 mS/cm², EK −77 mV, gK 36 mS/cm², EL −54.387 mV, gL 0.03 mS/cm²,
        C 1 µF/cm², V_th 20 mV. Keyword ``overrides`` replace single fields.
        """
        return cls(**overrides)

    @classmethod
    def hh1952(cls, **overrides: PopArrayLike) -> "HHParams":
        """The textbook Hodgkin & Huxley (1952) values in absolute voltages.

        Same as the defaults except ``gL = 0.3`` mS/cm², which puts rest at −64.996 mV.

        The course-notebook convention (seed 004: ``ENa = 115``, ``EK = −12``, ``EL = 10.6`` mV,
        voltages measured relative to rest) is this preset shifted by 65 mV: a voltage ``u`` in
        that convention is ``V = u − 65`` here, and ``ENa = 115 − 65 = 50``,
        ``EK = −12 − 65 = −77``, ``EL = 10.6 − 65 = −54.4`` (−54.387 to match the
        rate functions' exact rest).
        """
        kw = dict(gL=0.3)
        kw.update(overrides)
        return cls(**kw)

    @classmethod
    def from_preset(cls, name: str, **overrides: PopArrayLike) -> "HHParams":
        """A preset by name: ``"brainpy"`` (the seeds' defaults) or ``"hh1952"``."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
        return getattr(cls, PRESETS[name])(**overrides)


HHParams.FIELDS = tuple(f.name for f in dataclasses.fields(HHParams))
UNITS = {f.name: f.metadata["unit"] for f in dataclasses.fields(HHParams)}
"""Unit of every `HHParams` field as written in files (ASCII)."""
SINCE_V1 = tuple(f.name for f in dataclasses.fields(HHParams) if f.metadata["since_v1"])
"""Fields added after version 1 of the parameter file format: optional in files."""

VALUE_RULES = (
    ("C", lambda x: x <= 0, "HHParams.C (capacitance, uF/cm^2) must be > 0"),
    ("gNa", lambda x: x < 0, "HHParams.gNa (conductance, mS/cm^2) must be >= 0"),
    ("gK", lambda x: x < 0, "HHParams.gK (conductance, mS/cm^2) must be >= 0"),
    ("gL", lambda x: x < 0, "HHParams.gL (conductance, mS/cm^2) must be >= 0"),
    # a NaN in any other field makes the state NaN (caught by a run's finiteness check); a NaN
    # threshold would only hide every spike
    # (NumPy and JAX arrays alike: no eager JAX operation, and its compilation, on concrete values)
    ("V_th", lambda x: (x != x) | (abs(x) == np.inf), "HHParams.V_th must be finite"),
    ("temperature", lambda x: ~(x > -273.15), "HHParams.temperature (degC) must be > -273.15"),
    ("q10", lambda x: ~(x > 0), "HHParams.q10 must be > 0"),
)
"""The invariants of `HHParams` beyond finiteness, as ``(field, is_bad(array), message)``: checked
by the constructor (`__check_init__`, concrete values), and by `simulate` for parameters that
bypassed it (`eqx.tree_at`, concrete: a `ValueError`) or are traced (`eqx.error_if`). One table, so
a new field's invariant is written once."""


def check_values(params: HHParams) -> None:
    """`VALUE_RULES` for the concrete fields of `params` (traced ones are skipped): a `ValueError`
    naming the field. Run by the constructor, and by `simulate` for parameters that bypassed it
    (set with `eqx.tree_at`)."""
    for name, bad, message in VALUE_RULES:
        value = getattr(params, name)
        if isinstance(value, jax.core.Tracer):
            continue
        with jax.ensure_compile_time_eval():  # concrete, even inside the caller's jit
            is_bad = bool(np.any(np.asarray(bad(np.asarray(value)))))
        if is_bad:
            raise ValueError(f"{message}, got {show(np.asarray(value))}.")

PRESETS = {"brainpy": "brainpy", "hh1952": "hh1952"}
"""Preset names accepted by :meth:`HHParams.from_preset` (and the CLI's ``--preset``)."""
