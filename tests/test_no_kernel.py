"""The package without a C++ compiler: the no-kernel leg of ``make test``.

A fresh interpreter runs with ``$CXX`` naming no program and an empty kernel cache, the state
of a machine with no compiler: the fused kernel cannot be built, and everything must still work,
silently (``-W error``: any warning fails), on the `lax.scan` loop. The core checks run there:
spike times of the default stepper against the SciPy reference, a population, a gradient against
central differences, asking for the kernel explicitly (an error naming the reason), a chunked
run and the command line.
"""

import os
import subprocess
import sys
import textwrap

_TESTS = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_TESTS)

_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    import hh_jax
    from hh_jax._fused import kernel_path
    from backends import loop
    from helpers import central_fd, reference_spikes

    assert kernel_path() is None, kernel_path()

    # the default stepper, on the scan loop: every spike within 0.02 ms of SciPy
    ref = reference_spikes("hh1952", 10.0, 100.0)
    r = hh_jax.simulate(hh_jax.HHParams.hh1952(), 10.0, duration=100.0, dt=0.01, record=("V",))
    got = np.asarray(r.spike_times)[: int(r.spike_count)]
    assert len(got) == len(ref), (got, ref)
    assert np.max(np.abs(got - ref)) < 0.02, np.max(np.abs(got - ref))
    assert r.V.shape == (10001,)

    # the same as pinning the scan loop, bit for bit
    s = hh_jax.simulate(hh_jax.HHParams.hh1952(), 10.0, duration=100.0, dt=0.01, record=("V",),
                        **loop("scan"))
    np.testing.assert_array_equal(np.asarray(r.V), np.asarray(s.V))

    # asking for the kernel says why it cannot run
    try:
        hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=1.0, dt=0.01, **loop("kernel"))
    except ValueError as e:
        assert "no C++ compiler" in str(e), e
    else:
        raise AssertionError("the kernel was asked for and no error was raised")

    # a heterogeneous population and a gradient against central differences
    p = hh_jax.HHParams(gNa=jnp.array([100.0, 120.0, 140.0]))
    pop = hh_jax.simulate(p, 10.0, duration=50.0, dt=0.01, record=())
    assert pop.spike_count.shape == (3,) and bool(jnp.all(pop.spike_count > 0))
    f = lambda gK: hh_jax.simulate(hh_jax.HHParams(gK=gK), 10.0, duration=20.0, dt=0.01).V.mean()
    g, fd = float(jax.grad(f)(36.0)), central_fd(lambda x: float(f(x)), 36.0, 1e-3)
    assert abs(g - fd) <= 1e-4 * abs(fd), (g, fd)

    # a chunked run equals one call
    out = sys.argv[1]
    c = hh_jax.simulate_chunked(hh_jax.HHParams(), 10.0, duration=40.0, dt=0.01, chunk_steps=1000,
                                out=os.path.join(out, "chunked"), progress=False)
    one = hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=40.0, dt=0.01, record=())
    assert int(c.spike_count) == int(one.spike_count) > 0

    # the command line
    from hh_jax._cli import main
    rc = main(["simulate", "--duration", "20", "--dt", "0.01", "--n", "2", "--no-plot",
               "--out", os.path.join(out, "cli")])
    assert rc == 0, rc
    print("no-kernel leg: ok")
    """
)


def test_package_works_without_a_compiler(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HH_JAX_NO_KERNEL"}
    env.update(
        CXX="hh-jax-test-no-such-compiler",
        HH_JAX_CACHE_DIR=str(tmp_path / "empty-cache"),
        PYTHONPATH=os.pathsep.join([_ROOT, _TESTS, env.get("PYTHONPATH", "")]),
        MPLBACKEND="Agg",
    )
    proc = subprocess.run([sys.executable, "-W", "error", "-c", _SCRIPT, str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "no-kernel leg: ok" in proc.stdout
