"""Build, cache and load the fused CPU kernel of `ExpEuler` (``_kernel/hh_expeuler.cc``).

The C++ source is compiled once per machine with the system C++ compiler (``$CXX``, default
``g++``) into ``$HH_JAX_CACHE_DIR`` (default ``~/.cache/hh_jax``), and its two handlers are
registered as XLA FFI targets. `_fused.py` runs them.
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

import jax

SOURCE = Path(__file__).parent / "_kernel" / "hh_expeuler.cc"
FLAGS = ("-O3", "-fno-math-errno", "-fopenmp-simd", "-std=c++17", "-shared", "-fPIC")
FFI_TARGETS = {"hh_jax_expeuler_f32": "HhExpEulerF32", "hh_jax_expeuler_f64": "HhExpEulerF64"}
"""XLA FFI target name → the C symbol of its handler in the library."""


def cache_dir() -> Path:
    if os.environ.get("HH_JAX_CACHE_DIR"):
        return Path(os.environ["HH_JAX_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hh_jax"


def cpu_signature() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        lines = [ln for ln in text.splitlines() if ln.startswith(("flags", "model name", "Features"))]
        return "\n".join(sorted(set(lines)))
    except OSError:
        return platform.processor()


@functools.lru_cache(maxsize=None)
def library():
    """``(ctypes library, None)`` once built, loaded and registered, or ``(None, reason)``."""
    if os.environ.get("HH_JAX_NO_KERNEL"):
        return None, "HH_JAX_NO_KERNEL is set"
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        return None, f"no C++ compiler ({cxx!r} not found; set CXX)"
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        return None, f"{cxx} --version failed: {e}"
    source = SOURCE.read_bytes()
    key = hashlib.sha256(
        b"\0".join(x.encode() if isinstance(x, str) else x for x in (
            source, jax.__version__, version, " ".join(FLAGS), platform.machine(), cpu_signature()))
    ).hexdigest()[:16]
    target = cache_dir() / f"hh_expeuler-{key}.so"
    if not target.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            return None, f"cannot create the kernel cache {target.parent}: {e}"
        errors = []
        for arch in (("-march=native",), ()):  # without -march=native where the compiler refuses it
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
            os.close(fd)
            cmd = [cxx, *FLAGS, *arch, f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o", tmp]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode == 0:
                os.replace(tmp, target)  # atomic: concurrent builders (test workers) are safe
                break
            os.unlink(tmp)
            errors.append(proc.stderr.strip().splitlines()[-1:] or ["?"])
        else:
            return None, f"compiling {SOURCE.name} failed: {errors}"
    try:
        lib = ctypes.CDLL(str(target))
    except OSError as e:
        return None, f"cannot load {target}: {e}"
    for name, symbol in FFI_TARGETS.items():
        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
    return lib, None


def kernel_path() -> str | None:
    """Path of the compiled kernel (building it if needed), or None where it cannot be built."""
    lib, _ = library()
    return None if lib is None else lib._name
