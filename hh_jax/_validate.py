"""Argument conversion and checking, shared by every module: one function per kind of value, one
error vocabulary.

Each function takes the `name` its messages use and then the value (e.g. ``"HHParams.gNa"``,
``"alpha_m: V (mV)"``) and raises a `TypeError` for a value of the wrong kind and a `ValueError`
for a value of the right kind outside its range, both naming `name`:

- `as_float_array`: a real floating JAX array (fields of Modules, voltages, currents);
  ``"… must be a number or a float array, got …"``, ``"… must be real, …"``,
  ``"… must be finite, …"``.
- `as_numbers`: the same checks, as a concrete NumPy float64 array (values a Python loop needs).
- `as_number`: one real number as a Python float (times, durations, settings);
  ``"… must be a number, got …"``, ``"… must be a positive finite number, …"``.
- `as_int`, `as_bool`: counts and switches; ``"… must be an integer >= k, got …"``,
  ``"… must be a bool, got …"``.

Only values known in Python are checked; a traced value (inside `jax.jit`/`grad`) passes with at
most a dtype conversion, and is checked where it is used (`eqx.error_if`).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike


def _is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def show(x) -> str:
    """A short description of a concrete value for messages: its repr if a scalar, else its shape
    and first values."""
    arr = np.asarray(x)
    if arr.ndim == 0:
        return repr(arr.item())
    return f"array of shape {arr.shape} starting {arr.ravel()[:4].tolist()}"


def _real_array(value, name: str) -> np.ndarray:
    """`value` (concrete) as a NumPy array of real numbers (integers or floats), else `TypeError`."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a number or a float array, got {value!r}.")
    try:
        arr = np.asarray(value)
    except Exception as e:  # e.g. ragged lists
        raise TypeError(f"{name} must be a number or a float array: {e}") from None
    if np.issubdtype(arr.dtype, np.bool_):  # True as 120 mS/cm^2's stand-in is a bug, not a value
        raise TypeError(
            f"{name} must be a number or a float array, got a bool "
            f"({repr(arr.item()) if arr.ndim == 0 else f'array of shape {arr.shape}'})."
        )
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real, got dtype {arr.dtype}.")
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be a number or a float array, got dtype {arr.dtype} ({value!r}).")
    if np.issubdtype(arr.dtype, np.floating) and arr.dtype.itemsize > 8:
        raise TypeError(
            f"{name}: dtype {arr.dtype} (long double) is not supported by JAX; pass float64 or float32."
        )
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {show(arr)}.")


def as_float_array(name: str, value: ArrayLike, *, finite: bool = False, dtype=None) -> jax.Array:
    """`value` as a real floating JAX array.

    Floating arrays keep their dtype (JAX arrays are returned as they are, NumPy float32 stays
    float32); integers and Python numbers become the default float (float64 under
    ``jax_enable_x64``, else float32). With `dtype`, the result is cast to it.

    **Arguments:**

    - `name`: how messages name the value, e.g. ``"HHParams.gNa"`` (first, so that
      ``functools.partial(as_float_array, name)`` is a field converter).
    - `value`: a number, a nested sequence of numbers, a NumPy or JAX array, or a tracer.
    - `finite`: also refuse NaN and ±inf (`ValueError`), for concrete values.
    - `dtype`: the floating dtype to return; default as above.

    **Returns:** a JAX array (a tracer stays a tracer).

    **Raises:** `TypeError` naming `name` for strings, bytes, None, bools, complex numbers,
    objects, ragged sequences and ``longdouble`` (which JAX cannot hold); `ValueError` for
    non-finite values when `finite`.

    **Example:** ``as_float_array("HHParams.gNa", 120)`` is ``Array(120., dtype=float64)``.
    """
    if _is_traced(value):
        if jnp.issubdtype(value.dtype, jnp.complexfloating) or jnp.issubdtype(value.dtype, jnp.bool_):
            raise TypeError(f"{name} must be a real float array, got dtype {value.dtype}.")
        if dtype is not None:
            return value.astype(dtype)
        return value if jnp.issubdtype(value.dtype, jnp.floating) else value.astype(jnp.result_type(float))
    arr = _real_array(value, name)
    if finite:
        _check_finite(arr, name)
    if dtype is not None:
        return jnp.asarray(value if isinstance(value, jax.Array) else arr, dtype=dtype)
    if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jnp.floating):
        return value
    if np.issubdtype(arr.dtype, np.floating) and arr.dtype != np.float64:
        return jnp.asarray(arr)  # keep float32 / float16 as given
    return jnp.asarray(arr, dtype=jnp.result_type(float))


def as_numbers(name: str, value) -> np.ndarray:
    """`value` as a concrete NumPy float64 array (values a Python loop or NumPy needs), with the
    checks and messages of `as_float_array`; a traced value is a `TypeError` naming `name`.

    **Example:** ``as_numbers("currents (uA/cm^2)", [0.0, 5.0])``.
    """
    if _is_traced(value):
        raise TypeError(f"{name} must be concrete numbers (known in Python), got a traced value {value}.")
    return np.asarray(_real_array(value, name), dtype=np.float64)


def as_number(name: str, value, *, unit: str = "", positive: bool = False, nonneg: bool = False,
              finite: bool = True) -> float:
    """One real number as a Python float.

    **Arguments:**

    - `name`: how messages name the value, e.g. ``"Step.onset"``.
    - `value`: a Python or NumPy real number, or a 0-d concrete array of one.
    - `unit`: shown in messages after the noun, e.g. ``"ms"`` → ``"must be a number (ms)"``.
    - `positive` / `nonneg`: also require ``> 0`` / ``>= 0``.
    - `finite`: require a finite value (default True).

    **Returns:** a Python float.

    **Raises:** `TypeError` ``"<name> must be a number (<unit>), got …"`` for bools, strings,
    None, complex numbers, arrays with elements ≠ 1 and traced values; `ValueError`
    ``"<name> must be a [positive] finite number [>= 0] (<unit>), got …"`` otherwise.

    **Example:** ``as_number("dt", 0.01, unit="ms", positive=True)`` is ``0.01``.
    """
    u = f" ({unit})" if unit else ""
    ok_type = isinstance(value, (int, float, np.integer, np.floating)) or (
        isinstance(value, (np.ndarray, jax.Array)) and not _is_traced(value) and value.ndim == 0
        and (np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating))
    )
    if not ok_type or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number{u}, got {value!r}.")
    v = float(value)
    if positive and not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number{u}, got {v}.")
    if nonneg and not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite number >= 0{u}, got {v}.")
    if finite and not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number{u}, got {v}.")
    return v


def as_int(name: str, value, *, minimum: int) -> int:
    """A Python or NumPy integer ``>= minimum`` as a Python int; otherwise a `ValueError`
    ``"<name> must be an integer >= <minimum>, got …"`` (bools and floats such as 2.0 included).

    **Example:** ``as_int("record_every", 10, minimum=1)``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def as_bool(name: str, value) -> bool:
    """A Python or NumPy bool as a Python bool; otherwise a `TypeError`
    ``"<name> must be a bool, got …"`` (1 and "yes" are refused).

    **Example:** ``as_bool("throw", True)``.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}.")
    return bool(value)
