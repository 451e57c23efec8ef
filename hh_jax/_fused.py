"""The fused CPU kernel of `ExpEuler`: the whole time loop in one XLA FFI call.

XLA's CPU backend splits one exponential-Euler step into ~16 kernels (it never fuses an
exponential into two consumers), so a `lax.scan` step streams the population through memory
~16 times and pays a kernel launch each time. ``_kernel/hh_expeuler.cc`` runs blocks of 128
neurons through *all* steps with the state in L1 cache, vectorised by the compiler, on every
core. It is compiled once per machine with the system C++ compiler (``$CXX``, default ``g++``)
into ``$HH_JAX_CACHE_DIR`` (default ``~/.cache/hh_jax``) and registered as an XLA FFI target.

`simulate` uses it for `ExpEuler` on the CPU when the stimulus can be tabulated (a constant, a
population-wide waveform, or a small per-neuron one); otherwise, or when no compiler is found,
it runs the `lax.scan` loop, which computes the same mathematics (results agree to rounding).
Derivatives (`jax.grad`, `jax.jvp`) are those of the `lax.scan` loop, through a custom JVP.
"""

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._params import HHParams
from ._stimulus import Constant
from ._vector_field import HHState

_SOURCE = Path(__file__).parent / "_kernel" / "hh_expeuler.cc"
_FLAGS = ("-O3", "-fno-math-errno", "-fopenmp-simd", "-std=c++17", "-shared", "-fPIC")
_TARGETS = {jnp.dtype(jnp.float32): "hh_jax_expeuler_f32", jnp.dtype(jnp.float64): "hh_jax_expeuler_f64"}
_PARAM_ORDER = ("gNa", "gK", "gL", "ENa", "EK", "EL", "C", "V_th")
_STATE = "Vmhn"
MAX_TABLE = 2**25
"""Largest tabulated stimulus (elements, steps × neurons) the fused kernel takes."""


def _cache_dir() -> Path:
    if os.environ.get("HH_JAX_CACHE_DIR"):
        return Path(os.environ["HH_JAX_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hh_jax"


def _cpu_signature() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        lines = [ln for ln in text.splitlines() if ln.startswith(("flags", "model name", "Features"))]
        return "\n".join(sorted(set(lines)))
    except OSError:
        return platform.processor()


@functools.lru_cache(maxsize=None)
def _library():
    """``(ctypes library, None)`` once built and loaded, or ``(None, reason)``."""
    if os.environ.get("HH_JAX_NO_KERNEL"):
        return None, "HH_JAX_NO_KERNEL is set"
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        return None, f"no C++ compiler ({cxx!r} not found; set CXX)"
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        return None, f"{cxx} --version failed: {e}"
    source = _SOURCE.read_bytes()
    key = hashlib.sha256(
        b"\0".join(x.encode() if isinstance(x, str) else x for x in (
            source, jax.__version__, version, " ".join(_FLAGS), platform.machine(), _cpu_signature()))
    ).hexdigest()[:16]
    target = _cache_dir() / f"hh_expeuler-{key}.so"
    if not target.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            return None, f"cannot create the kernel cache {target.parent}: {e}"
        errors = []
        for arch in (("-march=native",), ()):  # without -march=native where the compiler refuses it
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
            os.close(fd)
            cmd = [cxx, *_FLAGS, *arch, f"-I{jax.ffi.include_dir()}", str(_SOURCE), "-o", tmp]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode == 0:
                os.replace(tmp, target)  # atomic: concurrent builders (test workers) are safe
                break
            os.unlink(tmp)
            errors.append(proc.stderr.strip().splitlines()[-1:] or ["?"])
        else:
            return None, f"compiling {_SOURCE.name} failed: {errors}"
    try:
        lib = ctypes.CDLL(str(target))
    except OSError as e:
        return None, f"cannot load {target}: {e}"
    for fn, name in (("HhExpEulerF32", _TARGETS[jnp.dtype(jnp.float32)]),
                     ("HhExpEulerF64", _TARGETS[jnp.dtype(jnp.float64)])):
        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, fn)), platform="cpu")
    return lib, None


def kernel_path() -> str | None:
    """Path of the compiled kernel (building it if needed), or None where it cannot be built."""
    lib, _ = _library()
    return None if lib is None else lib._name


def unavailable_reason(stimulus, config, dtype) -> str | None:
    """Why the fused kernel cannot run this simulation (None: it can)."""
    if jax.default_backend() != "cpu":
        return f"it runs on the CPU only (default backend: {jax.default_backend()})"
    if jnp.dtype(dtype) not in _TARGETS:
        return f"dtype {jnp.dtype(dtype)} (float32 and float64 only)"
    rows, cols = _table_shape(stimulus, config, dtype)
    if rows * cols > MAX_TABLE:
        return (f"the stimulus varies per neuron and in time; its table ({rows} steps × {cols} "
                f"neurons) exceeds {MAX_TABLE} elements")
    _, reason = _library()
    return reason


def _table_shape(stimulus, config, dtype) -> tuple[int, int]:
    N = int(np.prod(config.shape, dtype=np.int64))
    out = jax.eval_shape(stimulus, jax.ShapeDtypeStruct((), dtype))
    cols = 1 if out.size == 1 else N
    rows = 1 if isinstance(stimulus, Constant) else config.n_steps
    return rows, cols


def _table(stimulus, ts, shape, rows, cols):
    """The current (µA/cm²) at times `ts` as ``[rows, cols]`` (rows 1: time-independent)."""
    values = stimulus(ts[0])[None] if rows == 1 else jax.vmap(stimulus)(ts)
    if cols == 1:
        return values.reshape(values.shape[0], 1)
    # the stimulus' shape broadcasts against the population's from the right
    out = values.shape[1:]
    values = values.reshape(values.shape[:1] + (1,) * (len(shape) - len(out)) + out)
    return jnp.broadcast_to(values, values.shape[:1] + tuple(shape)).reshape(values.shape[0], cols)


def fused_arrays(params: HHParams, stimulus, y0: HHState, *, config, staggered: bool, states: str):
    """Run the kernel. `params` and `y0` are broadcast to ``config.shape`` and of one dtype;
    `states` names the state variables to record (a subset of ``"Vmhn"``).

    **Returns:** (final `HHState`, spike counts, spike times ``[S, *shape]``,
    ``{v: [samples, *shape]}`` for v in `states`).
    """
    lib, reason = _library()  # registers the FFI targets
    if lib is None:
        raise RuntimeError(f"the fused kernel is unavailable: {reason}")
    shape = config.shape
    N = int(np.prod(shape, dtype=np.int64))
    dtype = y0.V.dtype
    dt = jnp.asarray(config.dt, dtype)
    t0 = jnp.asarray(config.t0, dtype)
    k = jnp.arange(config.n_steps + 1, dtype=jnp.int32).astype(dtype)
    t_steps = t0 + k * dt
    rows, cols = _table_shape(stimulus, config, dtype)
    imid = _table(stimulus, t_steps[:-1] + 0.5 * dt, shape, rows, cols)
    S = config.max_spikes
    hermite = S > 0 and config.spike_interpolation == "hermite"
    if hermite:
        iend = _table(stimulus, t_steps, shape, 1 if rows == 1 else rows + 1, cols)
    else:
        iend = jnp.zeros((1, 1), dtype)
    needed = states
    mask = sum(1 << _STATE.index(v) for v in needed)
    n_rec = config.n_steps // config.record_every + 1 if needed else 0
    flat = lambda x: jnp.broadcast_to(x, shape).reshape(N).astype(dtype)
    y0a = jnp.stack([flat(getattr(y0, v)) for v in _STATE])[None]
    par = jnp.stack([flat(getattr(params, f)) for f in _PARAM_ORDER])[None]
    out_types = (
        jax.ShapeDtypeStruct((1, 4, N), dtype),
        jax.ShapeDtypeStruct((1, N), jnp.int32),
        jax.ShapeDtypeStruct((1, n_rec, len(needed), N), dtype),
        jax.ShapeDtypeStruct((1, S, N), dtype),
    )
    yf, count, rec, spikes = jax.ffi.ffi_call(
        _TARGETS[jnp.dtype(dtype)], out_types, vmap_method="broadcast_all"
    )(
        y0a, par, imid[None], iend[None], jnp.stack([t0, dt])[None],  # traced: no recompilation per t0/dt
        n_steps=np.int64(config.n_steps),
        every=np.int64(config.record_every), rec_mask=np.int64(mask), hermite=np.int64(hermite),
        staggered=np.int64(staggered), threads=np.int64(_threads()),
    )
    final = HHState(*(yf[0, i].reshape(shape) for i in range(4)))
    traces = {v: rec[0, :, needed.index(v)].reshape((n_rec,) + shape) for v in needed}
    return final, count[0].reshape(shape), spikes[0].reshape((S,) + shape), traces


@functools.lru_cache(maxsize=None)
def _threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
