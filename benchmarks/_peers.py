"""Peer simulators (BrainPy, Brian2, NEURON, numba; Jaxley), driven by subprocess in their own venv.

The peers pin their own jax versions, so they live in a separate virtual environment
(``make peers`` → ``/work/main/.venv-peers`` or ``$HH_JAX_PEERS_PYTHON``); each configuration
runs in a fresh process of that venv's Python (`benchmarks/_peer_worker.py`). Every peer
simulates the same model: the preset's parameters, V = −65 mV with the gates at steady state,
a constant current, spikes as upward crossings of V_th.

Interface (also used by the work-precision benchmark):

- :func:`available_peers` → ``{name: version}`` of the peers that import here;
- :data:`PEER_METHODS` → ``{name: [method, ...]}``;
- :func:`run_peer` → a dict with keys ``peer, method, version, compile_s, times_s, median_s,
  neuron_steps_per_s, spike_counts`` (and ``spike_times`` if asked; ``cpu_s`` per repeat);
- :data:`PEER_GRAD_METHODS` and :func:`run_peer_grad` → the gradient workload of issue 14
  (Jaxley: ``jax.grad`` of ``jx.integrate`` with ``checkpoint_lengths``).
"""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

_WORKER = Path(__file__).with_name("_peer_worker.py")
_DEFAULT_VENV = Path(__file__).resolve().parents[1] / ".venv-peers"
_FALLBACK_VENV = Path("/work/main/.venv-peers")

PEER_METHODS: dict[str, list[str]] = {
    "numba": ["exp_euler", "exp_euler_staggered"],  # fused kernel, prange over neurons
    "brainpy": ["exp_auto"],                        # brainpy.dyn.HH in a bm.for_loop (jit)
    "brian2": ["exponential_euler"],                # runtime mode, Cython code generation
    "neuron": ["implicit_euler"],                   # NEURON's default fixed-step backward Euler
}
"""Methods each peer driver implements (Jaxley: not driven yet, reported as skipped)."""


def peers_python() -> str | None:
    """The peers venv's Python: ``$HH_JAX_PEERS_PYTHON``, ``./.venv-peers`` or ``/work/main/.venv-peers``."""
    env = os.environ.get("HH_JAX_PEERS_PYTHON")
    candidates = [Path(env)] if env else []
    candidates += [_DEFAULT_VENV / "bin" / "python", _FALLBACK_VENV / "bin" / "python"]
    for c in candidates:
        if c.exists():
            return str(c)
    return None


@functools.lru_cache(maxsize=None)
def available_peers() -> dict[str, str]:
    """``{name: version}`` of the peer packages installed in the peers venv (empty if none)."""
    py = peers_python()
    if py is None:
        return {}
    try:
        out = subprocess.run([py, str(_WORKER), json.dumps({"versions": True})], capture_output=True,
                             text=True, timeout=120, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return {}


def run_peer(name: str, *, method: str, preset: str = "brainpy", n: int, duration: float,
             dt: float, current: float, want_spike_times: bool = False, repeats: int = 5,
             dtype: str = "float64", timeout: float = 600.0) -> dict:
    """Run one peer configuration in a fresh subprocess; compile/first call, then `repeats` timings.

    **Arguments:** `name` (a key of `PEER_METHODS`), `method`, `preset` (``"brainpy"`` or
    ``"hh1952"``), `n` neurons, `duration` and `dt` in ms, `current` in µA/cm², `dtype`
    (``"float32"``/``"float64"``; NEURON always computes in float64).

    **Returns:** a dict (see the module docstring); ``{"peer": name, "skipped": reason}`` when
    the peer is not installed or failed.
    """
    import statistics

    if name not in PEER_METHODS:
        return {"peer": name, "method": method, "skipped": "no driver for this peer"}
    if method not in PEER_METHODS[name]:
        raise ValueError(f"method {method!r} is not one of {PEER_METHODS[name]} for peer {name!r}.")
    versions = available_peers()
    if name not in versions:
        return {"peer": name, "method": method, "skipped": "not installed in the peers venv"}
    req = dict(peer=name, method=method, preset=preset, n=int(n), duration=float(duration),
               dt=float(dt), current=float(current), want_spike_times=bool(want_spike_times),
               repeats=int(repeats), dtype=dtype)
    out = _run_worker(req, timeout)
    if "skipped" in out:
        return out
    steps = round(duration / dt)
    med = statistics.median(out["times_s"])
    out.update(peer=name, method=method, median_s=med, neuron_steps_per_s=n * steps / med,
               n=n, dtype=dtype)
    return out


PEER_GRAD_METHODS: dict[str, list[str]] = {
    "jaxley": ["bwd_euler", "exp_euler"],  # jx.integrate's solver= (bwd_euler is Jaxley's default)
}
"""Solvers each peer's gradient driver implements (`run_peer_grad`)."""


def _run_worker(req: dict, timeout: float) -> dict:
    """Run one request in a fresh process of the peers venv: the worker's JSON reply, or
    ``{"peer", "method", "skipped": reason}`` on a timeout or a failure."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONWARNINGS="ignore")
    skip = lambda why: {"peer": req["peer"], "method": req["method"], "skipped": why}
    try:
        proc = subprocess.run([peers_python(), str(_WORKER), json.dumps(req)], capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return skip(f"timed out after {timeout:.0f} s")
    if proc.returncode != 0:
        return skip("failed: " + proc.stderr.strip()[-300:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_peer_grad(name: str, *, n: int, dtype: str = "float32", repeats: int = 5,
                  timeout: float = 600.0, method: str = "bwd_euler", layout: str = "vmap",
                  preset: str = "brainpy", duration: float = 100.0, dt: float = 0.025,
                  current: float = 10.0, checkpoint_lengths: list[int] | None = None) -> dict:
    """Time one peer's gradient of L = Σ V² w.r.t. (gNa, gK, gL) in a fresh subprocess (issue 14).

    The workload of `benchmarks.grad_speed`: `duration` ms at `dt` ms (100 ms, 0.025 ms: 4 000
    steps), V summed squared over every step (and V0) and every neuron, `n` neurons with the
    constant currents ``linspace(6, 14, n)`` µA/cm² (`current` µA/cm² for ``n = 1``), V0 = −65 mV
    with the gates at steady state, the `preset`'s parameters, gradient w.r.t. the three
    conductances (mS/cm², shared by all neurons). Jaxley: ``jax.grad`` of ``jx.integrate(...,
    solver=method, checkpoint_lengths=...)`` (default two lengths near √steps, e.g. [80, 50]);
    `layout` ``"vmap"`` (one cell, ``jax.vmap`` over the currents), ``"network"`` (one
    ``jx.Network`` of `n` cells) or ``"network_vectorized"`` (the same with
    ``vectorize_cells=True``).

    **Returns:** a dict with ``peer, method, version, n, dtype, compile_s`` (first call of the
    jitted gradient: trace + compile + run), ``times_s, median_s, neuron_steps_per_s`` (the
    gradient), ``forward_compile_s, forward_times_s, forward_median_s`` (the loss alone, without
    checkpointing), ``peak_rss_mb`` (the worker's peak resident memory after the gradient calls;
    ``peak_rss_forward_mb`` after the forward calls, which run first), ``grad`` ([dL/dgNa, dL/dgK,
    dL/dgL] per mS/cm²), ``loss``, ``spike_counts`` (and ``spike_times`` at ``n = 1``); or
    ``{"peer": name, "skipped": reason}`` when the peer is not installed or failed.
    """
    import statistics

    if name not in PEER_GRAD_METHODS:
        return {"peer": name, "method": method, "skipped": "no gradient driver for this peer"}
    if method not in PEER_GRAD_METHODS[name]:
        raise ValueError(f"method {method!r} is not one of {PEER_GRAD_METHODS[name]} for peer {name!r}.")
    if layout not in ("vmap", "network", "network_vectorized"):
        raise ValueError(f"layout must be 'vmap', 'network' or 'network_vectorized', got {layout!r}.")
    versions = available_peers()
    if name not in versions:
        return {"peer": name, "method": method, "skipped": "not installed in the peers venv"}
    req = dict(kind="grad", peer=name, method=method, layout=layout, preset=preset, n=int(n),
               duration=float(duration), dt=float(dt), current=float(current),
               repeats=int(repeats), dtype=dtype, checkpoint_lengths=checkpoint_lengths)
    out = _run_worker(req, timeout)
    if "skipped" in out:
        return out
    med = statistics.median(out["times_s"])
    out.update(peer=name, method=method, median_s=med, neuron_steps_per_s=n * out["steps"] / med,
               forward_median_s=statistics.median(out["forward_times_s"]), n=n, dtype=dtype)
    return out


if __name__ == "__main__":  # quick check: python -m benchmarks._peers
    print(available_peers())
    for peer, methods in PEER_METHODS.items():
        r = run_peer(peer, method=methods[0], n=int(sys.argv[1]) if len(sys.argv) > 1 else 100,
                     duration=100.0, dt=0.01, current=10.0, repeats=2)
        print({k: r.get(k) for k in ("peer", "method", "version", "compile_s", "median_s",
                                      "neuron_steps_per_s", "skipped")},
              r.get("spike_counts") if isinstance(r.get("spike_counts"), int) else sum(r.get("spike_counts", [])))
