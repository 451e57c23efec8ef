"""The loops the core tests run on, named in one place.

`ExpEuler`'s time loop runs on one of two backends: ``"kernel"`` (`hh_jax.FusedCPU`), the fused
C++ kernel that `simulate` picks by default on the CPU, and ``"scan"`` (`hh_jax.ScanLoop`), the
`lax.scan` loop that runs on GPUs,
for stimuli the kernel cannot tabulate and wherever no compiler is found. The ``backend``
fixture (``conftest.py``) runs a test on both, so the scan loop stays covered on a machine where
the kernel is the default; where the kernel cannot be built, the ``"kernel"`` cases skip.

When the way a backend is chosen changes, only this module changes.
"""

import hh_jax

BACKENDS = ("kernel", "scan")


def loop(backend: str, *, staggered: bool = True) -> dict:
    """``simulate`` keywords running the exponential-Euler stepper on `backend` (``"kernel"`` or
    ``"scan"``): ``dict(stepper=..., backend=...)``; ``simulate`` raises, naming the reason, if
    the kernel is asked for and cannot run."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return dict(stepper=hh_jax.ExpEuler(staggered=staggered),
                backend=hh_jax.FusedCPU() if backend == "kernel" else hh_jax.ScanLoop())


def kernel_available() -> bool:
    """Whether the fused kernel is built and loadable on this machine."""
    from hh_jax._fused import kernel_path

    return kernel_path() is not None
