"""Global test configuration: float64 by default, headless matplotlib, hypothesis profiles.

Tests that need float32 use the `float32` fixture (a context that disables x64).
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ci", max_examples=25, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile(
        "nightly", max_examples=500, deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is a test extra; only property tests need it
    pass


@pytest.fixture
def float32():
    """Run the test body with x64 disabled (float32 arrays by default)."""
    with jax.enable_x64(False):
        yield


@pytest.fixture(params=["float32", "float64"])
def precision(request):
    """Run the test body once in float32 and once in float64; yields the dtype name."""
    with jax.enable_x64(request.param == "float64"):
        yield request.param


@pytest.fixture(params=["kernel", "scan"])
def backend(request):
    """Run the test once per `ExpEuler` backend: ``"kernel"`` (the fused CPU kernel, the CPU
    default) and ``"scan"`` (the `lax.scan` loop: GPUs, and wherever the kernel does not apply).
    Yields the name; ``backends.exp_euler(backend)`` is the stepper pinned to it."""
    from backends import kernel_available

    if request.param == "kernel" and not kernel_available():
        pytest.skip("no C++ compiler: no fused kernel")
    return request.param
