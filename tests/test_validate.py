"""The shared validation module (issue 13, item 4): one vocabulary of conversions and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hh_jax._validate import as_bool, as_float_array, as_int, as_number, as_numbers


@pytest.mark.parametrize("bad, pattern", [
    ("1", r"x must be a number or a float array, got '1'"),
    (None, r"x must be a number or a float array, got None"),
    (True, r"x must be a number or a float array, got a bool \(True\)"),
    (np.array([True, False]), r"got a bool \(array of shape \(2,\)\)"),
    (1j, r"x must be real, got dtype complex128"),
    ([1.0, [2.0]], r"x must be a number or a float array: "),
    (np.array([object()]), r"x must be a number or a float array, got dtype object"),
])
def test_as_float_array_refuses_non_numbers_naming_the_value(bad, pattern):
    with pytest.raises(TypeError, match=pattern):
        as_float_array("x", bad)


def test_as_float_array_dtypes():
    default = jnp.result_type(float)
    assert as_float_array("x", 1).dtype == default
    assert as_float_array("x", np.arange(3)).dtype == default
    assert as_float_array("x", np.ones(2, np.float32)).dtype == jnp.float32  # kept
    y = jnp.ones(2, jnp.float32)
    assert as_float_array("x", y) is y
    assert as_float_array("x", 1.0, dtype=jnp.float32).dtype == jnp.float32
    # traced: integers become the default float, floats pass
    assert jax.jit(lambda v: as_float_array("x", v))(jnp.arange(2)).dtype == default
    with pytest.raises(ValueError, match=r"x must be finite, got nan"):
        as_float_array("x", float("nan"), finite=True)
    assert np.isnan(as_float_array("x", float("nan")))


def test_as_numbers_is_concrete_float64():
    out = as_numbers("I", [1, 2])
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    with pytest.raises(TypeError, match=r"I must be a number or a float array, got 'a'"):
        as_numbers("I", "a")
    with pytest.raises(TypeError, match=r"I must be concrete numbers"):
        jax.jit(lambda v: as_numbers("I", v))(1.0)


def test_as_number_vocabulary():
    assert as_number("dt", np.float32(0.5), unit="ms", positive=True) == 0.5
    assert as_number("t", jnp.asarray(2)) == 2.0
    for bad in (True, "1", None, np.ones(2), 1j):
        with pytest.raises(TypeError, match=r"dt must be a number \(ms\), got"):
            as_number("dt", bad, unit="ms")
    with pytest.raises(ValueError, match=r"dt must be a positive finite number \(ms\), got 0\.0"):
        as_number("dt", 0, unit="ms", positive=True)
    with pytest.raises(ValueError, match=r"dt must be a positive finite number \(ms\), got inf"):
        as_number("dt", float("inf"), unit="ms", positive=True)
    with pytest.raises(ValueError, match=r"s must be a finite number >= 0, got -1\.0"):
        as_number("s", -1.0, nonneg=True)
    with pytest.raises(ValueError, match=r"t0 must be a finite number, got nan"):
        as_number("t0", float("nan"))
    assert as_number("lower", -float("inf"), finite=False) == -float("inf")


def test_as_int_and_as_bool():
    assert as_int("n", np.int64(3), minimum=1) == 3
    for bad in (0, 2.0, True, "3"):
        with pytest.raises(ValueError, match=r"n must be an integer >= 1, got"):
            as_int("n", bad, minimum=1)
    assert as_bool("throw", np.bool_(True)) is True
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match=r"throw must be a bool, got"):
            as_bool("throw", bad)
