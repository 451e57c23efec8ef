"""Type aliases shared across hh_jax, and the table of units used everywhere.

All quantities are per unit membrane area:

| quantity            | unit     |
|---------------------|----------|
| voltage, reversal   | mV       |
| time                | ms       |
| current density     | µA/cm²   |
| conductance density | mS/cm²   |
| capacitance         | µF/cm²   |
| rates α, β          | 1/ms     |
| firing rate         | Hz       |

With these units ``C dV/dt = I`` holds without conversion factors:
µA/cm² / (µF/cm²) = V/s = mV/ms.
"""

from typing import Union

import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, Shaped

ScalarLike = Union[float, int, Array, np.ndarray]
"""A Python number or a 0-d array."""

PopArray = Float[Array, "*pop"]
"""A float array whose shape is the population shape (``()`` for one neuron)."""

PopArrayLike = Union[float, int, ArrayLike]
"""Anything ``jnp.asarray`` turns into a float array broadcastable to the population."""

TimeArray = Float[Array, " time"]
Trace = Float[Array, "time *pop"]

UNITS = {
    "V": "mV",
    "m": "1",
    "h": "1",
    "n": "1",
    "C": "uF/cm^2",
    "gNa": "mS/cm^2",
    "gK": "mS/cm^2",
    "gL": "mS/cm^2",
    "ENa": "mV",
    "EK": "mV",
    "EL": "mV",
    "V_th": "mV",
    "temperature": "degC",
    "q10": "1",
    "I": "uA/cm^2",
    "INa": "uA/cm^2",
    "IK": "uA/cm^2",
    "IL": "uA/cm^2",
    "t": "ms",
}
"""Unit of every named quantity, as written in files (ASCII)."""

def shape_arg(shape, name: str = "shape") -> tuple[int, ...]:
    """A population-shape argument (an int or a sequence of ints, each ≥ 1) as a tuple.

    `TypeError` naming `name` for anything else (strings, floats, bools, None inside);
    `ValueError` for sizes < 1.
    """
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    try:
        items = list(shape) if not isinstance(shape, (str, bytes)) else None
    except TypeError:
        items = None
    if items is None or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in items
    ):
        raise TypeError(f"{name} must be an int or a tuple of ints, got {shape!r}.")
    shape = tuple(int(s) for s in items)
    if any(s < 1 for s in shape):
        raise ValueError(f"{name} must have positive sizes, got {shape}.")
    return shape


__all__ = [
    "Array",
    "ArrayLike",
    "Float",
    "Int",
    "PRNGKeyArray",
    "Shaped",
    "ScalarLike",
    "PopArray",
    "PopArrayLike",
    "TimeArray",
    "Trace",
    "UNITS",
]
