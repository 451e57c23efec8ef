"""Sharded populations equal unsharded ones (two forced host devices, in a subprocess)."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import hh_jax
    assert hh_jax.use_cpu_devices(2) == 2
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    out = {"devices": len(jax.devices())}
    cases = {
        # odd population (padding), heterogeneous parameters, population-shaped stimulus + step
        "odd": (hh_jax.HHParams(gNa=jnp.linspace(100.0, 140.0, 5)),
                hh_jax.Constant(jnp.linspace(4.0, 16.0, 5)) + hh_jax.Step(3.0, onset=20.0)),
        # 2-D population, scalar stimulus
        "grid": (hh_jax.HHParams(gK=jnp.linspace(30.0, 40.0, 6).reshape(2, 3)), 10.0),
    }
    for name, (p, s) in cases.items():
        kw = dict(duration=60.0, dt=0.01, record=("V", "n"), record_every=20)
        a = hh_jax.simulate(p, s, **kw)
        b = hh_jax.simulate_sharded(p, s, **kw)
        fin = lambda x: np.where(np.isfinite(x), x, 0.0)
        out[name] = dict(
            count_a=np.asarray(a.spike_count).tolist(), count_b=np.asarray(b.spike_count).tolist(),
            shape_b=list(b.V.shape), shape_a=list(a.V.shape),
            times=float(np.max(np.abs(fin(np.asarray(a.spike_times)) - fin(np.asarray(b.spike_times))))),
            inf_same=bool(np.array_equal(np.isinf(a.spike_times), np.isinf(b.spike_times))),
            V=float(np.max(np.abs(np.asarray(a.V) - np.asarray(b.V)))),
            n=float(np.max(np.abs(np.asarray(a.n) - np.asarray(b.n)))),
            final=float(np.max(np.abs(np.asarray(a.final_state.V) - np.asarray(b.final_state.V)))),
            t=float(np.max(np.abs(np.asarray(a.t) - np.asarray(b.t)))),
            finite=bool(b.finite),
        )
    # the GPU kernel per device (here in the Pallas interpreter): the same as one device's scan
    p = hh_jax.HHParams(gNa=jnp.linspace(100.0, 140.0, 5))
    kw = dict(duration=12.0, dt=0.025, record=("V",), record_every=8, max_spikes=3)
    a = hh_jax.simulate(p, 10.0, backend=hh_jax.ScanLoop(), **kw)
    b = hh_jax.simulate_sharded(p, 10.0, backend=hh_jax.PallasGPU(interpret=True), **kw)
    out["pallas"] = dict(same_counts=bool(np.array_equal(a.spike_count, b.spike_count)),
                         spikes=int(np.sum(a.spike_count)),
                         V=float(np.max(np.abs(np.asarray(a.V) - np.asarray(b.V)))))
    print(json.dumps(out))
    """
)


def test_sharded_equals_unsharded_on_two_host_devices():
    env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["devices"] == 2
    for name in ("odd", "grid"):
        c = out[name]
        assert c["count_a"] == c["count_b"] and sum(np.ravel(c["count_a"])) > 0
        assert c["shape_a"] == c["shape_b"]
        assert c["inf_same"] and c["finite"]
        # float64: the same arithmetic on other array lengths, equal to rounding
        for key in ("times", "V", "n", "final", "t"):
            assert c[key] < 1e-9, (name, key, c[key])
    assert out["pallas"]["same_counts"] and out["pallas"]["spikes"] > 0
    assert out["pallas"]["V"] < 1e-9


def test_sharded_on_one_device_is_simulate():
    p = hh_jax.HHParams(gNa=jnp.linspace(110.0, 130.0, 3))
    kw = dict(duration=30.0, dt=0.01, record=("V",), max_spikes=4)
    a = hh_jax.simulate(p, 10.0, **kw)
    b = hh_jax.simulate_sharded(p, 10.0, devices=jax.devices()[:1], **kw)
    np.testing.assert_array_equal(np.asarray(a.spike_count), np.asarray(b.spike_count))
    np.testing.assert_allclose(np.asarray(b.V), np.asarray(a.V), atol=1e-10)
    assert b.duration == a.duration and b.dt == a.dt


def test_use_cpu_devices_rejects_bad_n_and_late_calls():
    with pytest.raises(ValueError, match="n must be"):
        hh_jax.use_cpu_devices(0)
    jnp.zeros(1)  # the backend exists now
    with pytest.raises(RuntimeError, match="before JAX creates"):
        hh_jax.use_cpu_devices(len(jax.devices("cpu")) + 3)


def test_sharded_rejects_bad_devices():
    with pytest.raises(ValueError, match="devices"):
        hh_jax.simulate_sharded(hh_jax.HHParams(), 10.0, duration=1.0, dt=0.1, devices=[])


_MULTIHOST = textwrap.dedent(
    """
    import json, sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address="localhost:" + sys.argv[2], num_processes=2,
                               process_id=int(sys.argv[1]))
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp, numpy as np, hh_jax
    from jax.experimental import multihost_utils
    p = hh_jax.HHParams(gNa=jnp.linspace(100.0, 140.0, 5))
    stim = hh_jax.Constant(jnp.linspace(4.0, 16.0, 5))
    r = hh_jax.simulate_sharded(p, stim, duration=30.0, dt=0.01, record=(), max_spikes=3)
    count = np.asarray(multihost_utils.process_allgather(r.spike_count, tiled=True))
    times = np.asarray(multihost_utils.process_allgather(r.spike_times, tiled=True))
    a = hh_jax.simulate(p, stim, duration=30.0, dt=0.01, record=(), max_spikes=3)
    ref = np.asarray(a.spike_times)
    print(json.dumps(dict(devices=len(jax.devices()), local=len(jax.local_devices()),
                          count=count.tolist(), ref=np.asarray(a.spike_count).tolist(),
                          same_inf=bool(np.array_equal(np.isinf(ref), np.isinf(times))),
                          dt=float(np.max(np.abs(np.where(np.isfinite(ref), ref - times, 0.0)))))))
    """
)


def test_multi_process_run_with_jax_distributed_equals_simulate():
    """Two processes on this host, one CPU device each, joined by `jax.distributed` (gloo)."""
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = str(s.getsockname()[1])
    env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, "-c", _MULTIHOST, str(i), port], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
        res = json.loads(out.strip().splitlines()[-1])
        assert res["devices"] == 2 and res["local"] == 1
        assert res["count"] == res["ref"] and sum(res["ref"]) > 0
        assert res["same_inf"] and res["dt"] < 1e-9
