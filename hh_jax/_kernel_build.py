"""Build, cache, verify and load the fused CPU kernel of `ExpEuler` (``_kernel/hh_expeuler.cc``).

The C++ source is compiled once per machine with the system C++ compiler (``$CXX``, default
``g++``) into the kernel cache, ``$HH_JAX_CACHE_DIR`` (default ``$XDG_CACHE_HOME/hh_jax``, or
``~/.cache/hh_jax``), and its two handlers are registered as XLA FFI targets; `_fused.py` runs
them. Whoever can write the cache runs code in every process that imports hh_jax, and a damaged
library kills the process inside the dynamic loader (SIGBUS), so:

- the folder is created ``0700``; a folder or library not owned by the user, or writable by
  group or others, is refused (as ssh refuses such keys);
- a library is written atomically (compiled in a private temporary folder, then renamed), and
  its SHA-256 and size are recorded next to it (``<library>.sha256``, written last, atomically);
  a library is loaded only if it matches that record, otherwise it is rebuilt (a truncated
  library is never handed to the loader); one lacking the kernel's symbols is not used;
- the compiler runs under a timeout (``$HH_JAX_COMPILE_TIMEOUT`` s, default 300) in its own
  process group, killed with all its children on timeout or Ctrl-C; nothing temporary is left.

Wherever the kernel cannot be used, `simulate` runs the `lax.scan` loop (same mathematics):
silently where the user asked for it (``HH_JAX_NO_KERNEL=1``) or no compiler is installed, with
one `UserWarning` naming the reason otherwise.
"""

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import jax

from . import _codegen, _model

SOURCE = Path(__file__).parent / "_kernel" / "hh_expeuler.cc"
FLAGS = ("-O3", "-fno-math-errno", "-fopenmp-simd", "-std=c++17", "-shared", "-fPIC")
HEADER = "hh_model.h"
"""The header the source includes, generated at build time from `hh_jax._model` (every model
constant, series coefficient and the parameter layout): no model number is typed in C++."""
ADJOINT_HEADER = "hh_adjoint.h"
"""The second generated header: the adjoint's vector–Jacobian products of one step and of dV/dt,
translated from `jax.vjp` of `hh_jax._model`'s functions by `hh_jax._codegen`."""
FFI_TARGETS = {"hh_jax_expeuler_f32": "HhExpEulerF32", "hh_jax_expeuler_f64": "HhExpEulerF64",
               "hh_jax_expeuler_vjp_f32": "HhExpEulerVjpF32", "hh_jax_expeuler_vjp_f64": "HhExpEulerVjpF64"}
"""XLA FFI target name → the C symbol of its handler in the library."""
COMPILE_TIMEOUT = 300.0
"""Seconds the compiler may take (``$HH_JAX_COMPILE_TIMEOUT`` overrides)."""
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
_REGISTERED = []  # the library whose handlers are registered (once per process; kept alive)
_LOCK = threading.Lock()  # one build/load at a time in this process
_STALE = 86400.0  # s: a build folder this old belongs to a killed build


class _Unavailable(Exception):
    """The kernel cannot be used; ``warn``: whether the user should hear about it."""

    def __init__(self, reason: str, *, warn: bool = True):
        super().__init__(reason)
        self.reason, self.warn = reason, warn


class _Loaded(NamedTuple):
    lib: ctypes.CDLL | None
    path: str | None
    reason: str | None


def _warn(message: str) -> None:
    """`warnings.warn`, attributed to the first caller outside hh_jax."""
    here, frame, level = os.path.dirname(__file__), sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(here):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, stacklevel=level)


def disabled() -> bool:
    """Whether ``$HH_JAX_NO_KERNEL`` disables the kernel (1/true/yes/on; 0/false/no/off/empty do not)."""
    value = os.environ.get("HH_JAX_NO_KERNEL", "")
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() not in _FALSE:
        _warn(f"HH_JAX_NO_KERNEL={value!r} is not one of 1/true/yes/on or 0/false/no/off; "
              "the fused kernel stays enabled")
    return False


def cache_dir() -> Path:
    """The kernel cache: ``$HH_JAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/hh_jax`` where that is an
    absolute path (the XDG specification ignores a relative one), else ``~/.cache/hh_jax``."""
    if os.environ.get("HH_JAX_CACHE_DIR"):
        return Path(os.path.abspath(os.environ["HH_JAX_CACHE_DIR"]))
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and not os.path.isabs(xdg):
        _warn(f"XDG_CACHE_HOME={xdg!r} is a relative path, which the XDG specification "
              "says to ignore; the fused kernel is cached in ~/.cache/hh_jax")
    base = xdg if os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hh_jax"


def compile_timeout() -> float:
    """Seconds the compiler may take: ``$HH_JAX_COMPILE_TIMEOUT``, default `COMPILE_TIMEOUT`."""
    text = os.environ.get("HH_JAX_COMPILE_TIMEOUT", "")
    try:
        value = float(text) if text else COMPILE_TIMEOUT
    except ValueError:
        value = float("nan")
    if not value > 0:
        _warn(f"HH_JAX_COMPILE_TIMEOUT={text!r} is not a positive number of seconds; "
              f"using {COMPILE_TIMEOUT:g} s")
        return COMPILE_TIMEOUT
    return value


def cpu_signature() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        lines = [ln for ln in text.splitlines() if ln.startswith(("flags", "model name", "Features"))]
        return "\n".join(sorted(set(lines)))
    except OSError:
        return platform.processor()


@functools.lru_cache(maxsize=None)
def load() -> _Loaded:
    """Build (if needed), verify, load and register the kernel, once per process."""
    try:
        with _LOCK:
            path, lib = _load()
        return _Loaded(lib, path, None)
    except _Unavailable as e:
        if e.warn:
            _warn(f"hh_jax: the fused CPU kernel is not used ({e.reason}); simulate runs "
                  "the lax.scan loop instead (same results, slower)")
        return _Loaded(None, None, e.reason)


def library():
    """``(ctypes library, None)`` once built, verified, loaded and registered, or ``(None, reason)``."""
    loaded = load()
    return loaded.lib, loaded.reason


def kernel_path() -> str | None:
    """Path of the compiled kernel (building it if needed), or None where it cannot be used."""
    return load().path


def _load() -> tuple[str, ctypes.CDLL]:
    if disabled():
        raise _Unavailable("HH_JAX_NO_KERNEL is set", warn=False)
    timeout, where = compile_timeout(), cache_dir()  # every setting checked, compiler or not
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise _Unavailable(f"no C++ compiler ({cxx!r} not found; set CXX)", warn=False)
    code, version, err = _run([cxx, "--version"], timeout=timeout, what=f"{cxx} --version")
    if code != 0:
        raise _Unavailable(f"{cxx} --version failed: {err.strip()[-200:]}")
    key = hashlib.sha256(b"\0".join(x.encode() if isinstance(x, str) else x for x in (
        # the adjoint header is a function of _model's and _codegen's sources and JAX's version
        # (generated only when building: tracing it costs ~0.15 s)
        SOURCE.read_bytes(), _model.cpp_header(), Path(_model.__file__).read_bytes(),
        Path(_codegen.__file__).read_bytes(), jax.__version__, version, " ".join(FLAGS), platform.machine(),
        cpu_signature()))).hexdigest()[:16]
    target = _secure_folder(where) / f"hh_expeuler-{key}.so"
    fd = _verified_or_rebuilt(cxx, target, timeout=timeout)
    for _ in range(3):
        # Only the user can write the folder and the file (checked), and every write is an atomic
        # rename, so the path names the file verified through `fd` unless a concurrent build has
        # just renamed its copy into place: then verify that one. (Not dlopen("/proc/self/fd/N"):
        # the loader takes a name it has loaded before for that earlier library.)
        try:
            st, now = os.fstat(fd), os.stat(target, follow_symlinks=False)
            if (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino):
                return str(target), _dlopen(target)
        except OSError:
            pass
        finally:
            os.close(fd)
        fd, problem = _open_verified(target)
        if fd is None:
            break
    raise _Unavailable(f"{target} keeps being replaced while it is verified")


def _verified_or_rebuilt(cxx: str, target: Path, *, timeout: float) -> int:
    """A descriptor of the verified library `target`, rebuilt if there is none, no record of its
    hash, or it does not match the record (damaged or replaced: never loaded)."""
    fd, problem = _open_verified(target)
    if fd is not None:
        return fd
    try:
        _build(cxx, target, timeout=timeout)
        fd, again = _open_verified(target)
        if fd is None:
            raise _Unavailable(f"{target} was rebuilt but does not verify: "
                               f"{again or 'no record of its hash'}")
    except _Unavailable as e:
        if problem:
            e.reason = f"the cached kernel {target} {problem}, and rebuilding it failed: {e.reason}"
        raise
    if problem:
        _warn(f"hh_jax: the cached fused kernel {target} {problem}; rebuilt it")
    return fd


def _insecure(st: os.stat_result) -> str | None:
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"is owned by uid {st.st_uid}, not by this user (uid {os.getuid()})"
    if st.st_mode & 0o022:
        return f"is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _secure_folder(folder: Path) -> Path:
    """Create the cache folder (0700) or check that only the user can write it."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.stat()
    except OSError as e:
        raise _Unavailable(f"cannot create the kernel cache {folder}: {e.strerror or e}; "
                           "set HH_JAX_CACHE_DIR to a writable folder") from None
    if not stat.S_ISDIR(st.st_mode):
        raise _Unavailable(f"the kernel cache {folder} is not a folder")
    problem = _insecure(st)
    if problem:
        raise _Unavailable(f"the kernel cache {folder} {problem}; refusing to load code from it "
                           "(chmod go-w it, or set HH_JAX_CACHE_DIR)")
    return folder


def _open_verified(target: Path) -> tuple[int | None, str | None]:
    """A descriptor of `target` whose contents match its recorded hash, or ``(None, problem)``
    for a library to rebuild (problem None: there is none yet, or no record of its hash).
    Raises `_Unavailable` for one that cannot be trusted or read."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        raise _Unavailable(f"cannot read the cached kernel {target}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Unavailable(f"the cached kernel {target} is not a regular file")
        problem = _insecure(st)
        if problem:
            raise _Unavailable(f"the cached kernel {target} {problem}; refusing to load it")
        record = _read_record(Path(f"{target}.sha256"))
        if record is None:
            os.close(fd)
            return None, None
        digest, size = record
        if st.st_size != size:
            problem = f"has {st.st_size} bytes where its build recorded {size} (truncated or replaced)"
        else:
            h = hashlib.sha256()
            while chunk := os.read(fd, 1 << 20):
                h.update(chunk)
            if h.hexdigest() != digest:
                problem = "does not match the SHA-256 recorded when it was built (damaged or replaced)"
        if problem:
            os.close(fd)
            return None, problem
        return fd, None
    except OSError as e:
        os.close(fd)
        raise _Unavailable(f"cannot read the cached kernel {target}: {e.strerror or e}") from None
    except BaseException:
        os.close(fd)
        raise


def _read_record(path: Path) -> tuple[str, int] | None:
    """``(sha256 hex, size)`` recorded at build time, or None (no usable record)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or _insecure(st) or st.st_size > 200:
            return None
        digest, size = os.read(fd, 200).decode("ascii").split()
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            return None
        return digest, int(size)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)


def _dlopen(target: Path) -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(str(target))
    except OSError as e:
        raise _Unavailable(f"cannot load {target}: {e}") from None
    missing = [s for s in FFI_TARGETS.values() if not hasattr(lib, s)]
    if missing:
        raise _Unavailable(f"{target} lacks the kernel's symbols {missing}")
    if not _REGISTERED:
        for name, symbol in FFI_TARGETS.items():
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
        _REGISTERED.append(lib)
    return lib


def _build(cxx: str, target: Path, *, timeout: float) -> None:
    """Compile into a private temporary folder next to `target`, then rename: the library first,
    its hash record last. The temporary folder goes whatever happens (failure, timeout, Ctrl-C);
    those of builds killed outright (SIGKILL, power loss) go with the next build, a day later."""
    for stale in target.parent.glob(".build-*"):
        try:
            if time.time() - stale.lstat().st_mtime > _STALE:
                shutil.rmtree(stale)
        except OSError:
            pass
    try:
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    except OSError as e:
        raise _Unavailable(f"cannot write the kernel cache {target.parent}: {e.strerror or e}; "
                           "set HH_JAX_CACHE_DIR to a writable folder") from None
    try:
        out = work / "kernel.so"
        source = work / SOURCE.name  # the source beside its generated header
        shutil.copyfile(SOURCE, source)
        (work / HEADER).write_text(_model.cpp_header())
        (work / ADJOINT_HEADER).write_text(_codegen.adjoint_header())
        env = {**os.environ, "TMPDIR": str(work)}  # the compiler's own temporary files too
        errors = []
        for arch in (("-march=native",), ()):  # without -march=native where the compiler refuses it
            cmd = [cxx, *FLAGS, *arch, f"-I{jax.ffi.include_dir()}", str(source), "-o", str(out)]
            code, _, err = _run(cmd, timeout=timeout, env=env, what=f"compiling {SOURCE.name}")
            if code == 0 and out.is_file():
                break
            errors.append((err.strip().splitlines() or ["?"])[-1])
        else:
            raise _Unavailable(f"compiling {SOURCE.name} with {cxx} failed: {errors}")
        data = out.read_bytes()
        os.chmod(out, 0o700)
        record = work / "kernel.sha256"
        record.write_text(f"{hashlib.sha256(data).hexdigest()} {len(data)}\n")
        os.chmod(record, 0o600)
        os.replace(out, target)
        os.replace(record, f"{target}.sha256")
    except OSError as e:
        raise _Unavailable(f"cannot write the kernel {target}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(cmd: list[str], *, timeout: float, what: str, env=None) -> tuple[int, str, str]:
    """Run `cmd` in its own process group; on timeout or interruption kill the whole group
    (the compiler driver and its cc1plus, as, ld)."""
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace", env=env,
                                start_new_session=True)
    except OSError as e:
        raise _Unavailable(f"{what}: cannot run {cmd[0]}: {e.strerror or e}") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException as e:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        if isinstance(e, subprocess.TimeoutExpired):
            raise _Unavailable(f"{what} did not finish within {timeout:g} s "
                               "(HH_JAX_COMPILE_TIMEOUT)") from None
        raise
    return proc.returncode, out, err
