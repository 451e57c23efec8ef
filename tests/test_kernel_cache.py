"""The fused kernel's cache (`hh_jax/_kernel_build.py`): nothing damaged, foreign, planted or
unreadable is ever loaded, nothing hangs or is left behind, and wherever the kernel cannot be
used `simulate` runs the `lax.scan` loop with one warning.

One real build per module (the "good" library); every other build uses a fake compiler, a shell
script that copies it (or fails, hangs, gets interrupted, or produces a library without the
kernel's symbols). Every test has its own cache folder (``$HH_JAX_CACHE_DIR`` in tmp_path) and
clears the once-per-process load before and after.
"""

import os
import re
import hashlib
import shutil
import stat
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import hh_jax
from hh_jax import _fused, _kernel_build
from hh_jax._kernel_build import cache_dir, disabled, kernel_path, library, load

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
FAKE_CXX = textwrap.dedent("""\
    #!/bin/sh
    if [ "$1" = "--version" ]; then echo "fake-cxx 1.0"; exit 0; fi
    for a; do out="$a"; done
    echo call >> "$FAKE_CXX_LOG"
    case "$FAKE_CXX_MODE" in
      copy) cp "$FAKE_CXX_GOOD" "$out" ;;
      slow) sleep 1; cp "$FAKE_CXX_GOOD" "$out" ;;
      nosym) cp "$FAKE_CXX_NOSYM" "$out" ;;
      fail) echo partial > "$out"; echo tmp > "$TMPDIR/cc-fake.o"; echo "error: fake failure" >&2; exit 1 ;;
      hang) echo partial > "$out"; echo tmp > "$TMPDIR/cc-fake.o"
            sleep 60 & echo $! > "$FAKE_CXX_PID"; wait ;;
      interrupt) echo partial > "$out"; echo tmp > "$TMPDIR/cc-fake.o"
            sleep 60 & echo $! > "$FAKE_CXX_PID"; sleep 0.2; kill -INT $PPID; wait ;;
    esac
""")


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A kernel built once by the real compiler (its path)."""
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("no C++ compiler")
    folder = tmp_path_factory.mktemp("real")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HH_JAX_CACHE_DIR", str(folder / "cache"))
        mp.delenv("HH_JAX_NO_KERNEL", raising=False)
        load.cache_clear()
        try:
            path = kernel_path()
        finally:
            load.cache_clear()
    if path is None:
        pytest.skip("the kernel does not build here")
    return path


@pytest.fixture(scope="module")
def foreign(good, tmp_path_factory):
    """A loadable library that is not the kernel (its path)."""
    folder = tmp_path_factory.mktemp("foreign")
    (folder / "foreign.c").write_text("int not_the_kernel(void) { return 42; }\n")
    subprocess.run([os.environ.get("CXX", "g++"), "-x", "c", "-shared", "-fPIC", str(folder / "foreign.c"),
                    "-o", str(folder / "foreign.so")], check=True, capture_output=True, timeout=120)
    return str(folder / "foreign.so")


@pytest.fixture
def env(tmp_path, monkeypatch, good, foreign):
    """A private cache folder and the fake compiler (copying the good library by default)."""
    cxx = tmp_path / "fake-cxx"
    cxx.write_text(FAKE_CXX)
    cxx.chmod(0o755)
    monkeypatch.setenv("HH_JAX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CXX", str(cxx))
    monkeypatch.setenv("FAKE_CXX_MODE", "copy")
    monkeypatch.setenv("FAKE_CXX_GOOD", good)
    monkeypatch.setenv("FAKE_CXX_NOSYM", foreign)  # loadable, without the kernel's symbols
    monkeypatch.setenv("FAKE_CXX_LOG", str(tmp_path / "calls"))
    monkeypatch.setenv("FAKE_CXX_PID", str(tmp_path / "pid"))
    for name in ("HH_JAX_NO_KERNEL", "HH_JAX_COMPILE_TIMEOUT", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    load.cache_clear()
    yield tmp_path
    load.cache_clear()


def _calls(tmp_path) -> int:
    log = tmp_path / "calls"
    return len(log.read_text().split()) if log.exists() else 0


def _built(tmp_path):
    """Build into the private cache with the fake compiler; the library's path."""
    path = kernel_path()
    assert path is not None, library()
    load.cache_clear()
    return path


@pytest.fixture(scope="module")
def scan():
    return hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=5.0, dt=0.01, backend=hh_jax.ScanLoop())


def _runs_the_scan_loop(scan):
    r = hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=5.0, dt=0.01)
    np.testing.assert_array_equal(np.asarray(r.V), np.asarray(scan.V))
    np.testing.assert_array_equal(np.asarray(r.spike_times), np.asarray(scan.spike_times))


def _runs_the_kernel(scan):
    assert kernel_path() is not None
    r = hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=5.0, dt=0.01)
    np.testing.assert_allclose(np.asarray(r.V), np.asarray(scan.V), rtol=1e-9, atol=1e-9)


def _falls_back(pattern, scan):
    """One warning naming the reason; the reason is kept; simulate runs the scan loop, warning no more."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lib, reason = library()
        assert lib is None and kernel_path() is None
        _runs_the_scan_loop(scan)
        assert _fused.unavailable_reason(hh_jax.Constant(1.0), (3,), 10, np.float64) == reason
    ours = [str(w.message) for w in caught if "kernel" in str(w.message)]
    assert len(ours) == 1, ours
    assert re.search(pattern, ours[0]) and re.search(pattern, reason), (ours, reason)
    assert "lax.scan" in ours[0]


def _mapped_inodes() -> set[int]:
    with open("/proc/self/maps") as f:
        return {int(line.split()[4]) for line in f if len(line.split()) > 4}


def _leftovers(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if not re.fullmatch(r"hh_expeuler-\w+\.so(\.sha256)?", n))


def test_ffi_targets_are_the_ones_the_kernel_calls():
    assert {*_fused._TARGETS.values(), *_fused._VJP_TARGETS.values()} == set(_kernel_build.FFI_TARGETS)


def test_a_build_is_private_and_records_its_hash(env, scan):
    path = _built(env)
    folder = os.path.dirname(path)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0
    digest, size = open(path + ".sha256").read().split()
    data = open(path, "rb").read()
    assert (digest, int(size)) == (hashlib.sha256(data).hexdigest(), len(data))
    assert _leftovers(folder) == []
    # loaded from the cache the next time, not rebuilt
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _runs_the_kernel(scan)
    assert _calls(env) == 1


def _replace(path, data: bytes):
    # a new file (inode): never change in place a library this process may have mapped
    with open(path + ".new", "wb") as f:
        f.write(data)
    os.replace(path + ".new", path)


def _truncate(path):
    data = open(path, "rb").read()
    _replace(path, data[: len(data) // 2])


def _corrupted(path):
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    _replace(path, bytes(data))


def _foreign(path):
    _replace(path, open(os.environ["FAKE_CXX_NOSYM"], "rb").read())  # another library, the old record


def _planted(path):
    _foreign(path)
    os.unlink(path + ".sha256")


@pytest.mark.parametrize("damage, pattern", [
    (_truncate, r"has \d+ bytes where its build recorded \d+ \(truncated or replaced\)"),
    (_corrupted, r"does not match the SHA-256 recorded when it was built \(damaged or replaced\)"),
    (_foreign, r"\(truncated or replaced\)|damaged or replaced"),
    (_planted, None),
])
def test_a_damaged_foreign_or_planted_library_is_rebuilt_never_loaded(env, scan, good, damage, pattern):
    path = _built(env)
    damage(path)
    bad_inode = os.stat(path).st_ino
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _runs_the_kernel(scan)
    ours = [str(w.message) for w in caught if "kernel" in str(w.message)]
    if pattern:  # it was changed after its build: say so, once
        assert len(ours) == 1 and re.search(pattern, ours[0]) and "rebuilt" in ours[0], ours
    else:  # no record (e.g. a cache from before records): rebuilt silently
        assert ours == []
    assert _calls(env) == 2
    assert open(path, "rb").read() == open(good, "rb").read()
    assert bad_inode not in _mapped_inodes() or bad_inode == os.stat(path).st_ino


@pytest.mark.parametrize("damage, pattern", [
    (_truncate, r"truncated or replaced"),
    (_corrupted, r"damaged or replaced"),
    (_foreign, r"replaced"),
    (_planted, r"failed"),
])
def test_when_the_rebuild_fails_too_the_scan_loop_runs(env, scan, monkeypatch, damage, pattern):
    path = _built(env)
    damage(path)
    bad_inode = os.stat(path).st_ino
    monkeypatch.setenv("FAKE_CXX_MODE", "fail")
    _falls_back(pattern + r".*fake failure|fake failure", scan)
    assert bad_inode not in _mapped_inodes()  # never loaded
    assert _leftovers(env / "cache") == []


def test_a_truncated_library_does_not_kill_the_interpreter(env, tmp_path):
    """In a fresh interpreter (the old code died of SIGBUS inside the dynamic loader)."""
    path = _built(env)
    _truncate(path)
    code = ("import hh_jax; r = hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=5.0, dt=0.01); "
            "print('spikes', int(r.spike_count))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "spikes 1" in proc.stdout


def test_concurrent_builds_into_one_cache_all_load_the_kernel(env, monkeypatch):
    monkeypatch.setenv("FAKE_CXX_MODE", "slow")
    code = "from hh_jax._kernel_build import kernel_path; print(kernel_path())"
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-W", "error", "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=environ) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-1000:] for _, err in outs]
    assert len({out.strip() for out, _ in outs}) == 1 and outs[0][0].strip().endswith(".so")
    assert _leftovers(env / "cache") == []


def test_a_library_without_the_kernels_symbols_falls_back_once(env, scan, monkeypatch):
    monkeypatch.setenv("FAKE_CXX_MODE", "nosym")
    _falls_back(r"lacks the kernel's symbols \['HhExpEulerF32', 'HhExpEulerF64', 'HhExpEulerVjpF32', 'HhExpEulerVjpF64'\]", scan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _runs_the_scan_loop(scan)  # neither raises nor warns again
    with pytest.raises(ValueError, match="lacks the kernel's symbols"):
        hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=1.0, dt=0.01, backend=hh_jax.FusedCPU())


def test_a_cached_path_that_is_no_regular_file_falls_back(env, scan):
    path = _built(env)
    os.unlink(path)
    os.mkfifo(path)  # opening it for reading would block: must not
    _falls_back(r"is not a regular file", scan)
    load.cache_clear()
    os.unlink(path)
    os.mkdir(path)
    _falls_back(r"is not a regular file", scan)


def test_a_symlinked_library_is_refused(env, scan, good):
    path = _built(env)
    os.unlink(path)
    os.symlink(good, path)
    _falls_back(r"cannot read the cached kernel .*: Too many levels of symbolic links", scan)


@pytest.mark.skipif(ROOT, reason="root reads files whatever their mode (see the FIFO/folder test)")
def test_an_unreadable_library_falls_back(env, scan):
    path = _built(env)
    os.chmod(path, 0)
    _falls_back(r"cannot read the cached kernel .*Permission denied", scan)


@pytest.mark.skipif(ROOT, reason="root writes whatever the mode (see the monkeypatched test)")
def test_an_unwritable_cache_falls_back(env, scan):
    (env / "cache").mkdir(mode=0o500)
    try:
        _falls_back(r"cannot write the kernel cache .*Permission denied; set HH_JAX_CACHE_DIR", scan)
    finally:
        (env / "cache").chmod(0o700)


def test_an_unwritable_cache_falls_back_without_raising(env, scan, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_kernel_build.tempfile, "mkdtemp", denied)
    _falls_back(r"cannot write the kernel cache .*Permission denied; set HH_JAX_CACHE_DIR", scan)
    assert _calls(env) == 0


def test_a_read_only_cache_holding_a_good_library_is_used(env, scan, monkeypatch):
    _built(env)
    monkeypatch.setattr(_kernel_build.tempfile, "mkdtemp", lambda *a, **k: pytest.fail("rebuilt"))
    _runs_the_kernel(scan)


def test_a_cache_path_that_is_a_file_falls_back(env, scan, monkeypatch):
    (env / "file").write_text("")
    monkeypatch.setenv("HH_JAX_CACHE_DIR", str(env / "file"))
    _falls_back(r"cannot create the kernel cache .*file", scan)


def _gone(pid: int) -> bool:
    """Whether process `pid` was killed (gone, or a zombie not reaped yet), within 5 s."""
    for _ in range(50):
        try:
            with open(f"/proc/{pid}/status") as f:
                if "\nState:\tZ" in f.read():
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


def test_a_hanging_compiler_times_out_and_is_killed_with_its_children(env, scan, monkeypatch):
    monkeypatch.setenv("FAKE_CXX_MODE", "hang")
    monkeypatch.setenv("HH_JAX_COMPILE_TIMEOUT", "1")
    start = time.monotonic()
    _falls_back(r"did not finish within 1 s \(HH_JAX_COMPILE_TIMEOUT\)", scan)
    assert time.monotonic() - start < 30  # 1 s per try, plus one scan run
    assert _calls(env) == 1  # a timeout is not retried without -march=native
    assert _gone(int((env / "pid").read_text()))  # the compiler's child (cc1plus, ld, ...) too
    assert _leftovers(env / "cache") == []


def test_a_failing_compiler_leaves_nothing_behind(env, scan, monkeypatch):
    monkeypatch.setenv("FAKE_CXX_MODE", "fail")
    _falls_back(r"compiling hh_expeuler\.cc with .* failed: \['error: fake failure', 'error: fake failure'\]", scan)
    assert _calls(env) == 2  # with and without -march=native
    assert _leftovers(env / "cache") == []


def test_ctrl_c_during_a_build_leaves_nothing_behind(env, scan, monkeypatch):
    """A real SIGINT (the fake compiler sends it to its parent mid-build), in a fresh
    interpreter with Python's Ctrl-C handler, as a user's Ctrl-C would be (a test worker may
    have inherited SIGINT ignored)."""
    monkeypatch.setenv("FAKE_CXX_MODE", "interrupt")
    # as at an interactive prompt: a process started in the background (CI, `make &`) inherits
    # SIGINT ignored, and Python then installs no KeyboardInterrupt handler
    code = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from hh_jax._kernel_build import library; library()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode != 0 and "KeyboardInterrupt" in proc.stderr, (proc.returncode, proc.stderr[-2000:])
    assert _calls(env) == 1  # interrupted, not retried without -march=native
    assert _leftovers(env / "cache") == []
    assert _gone(int((env / "pid").read_text()))
    # nothing remembered as a failure: the next process builds
    monkeypatch.setenv("FAKE_CXX_MODE", "copy")
    _runs_the_kernel(scan)


def test_the_next_build_removes_what_a_killed_build_left(env, scan):
    cache = env / "cache"
    cache.mkdir(mode=0o700)
    for name, age in ((".build-old", 2 * 86400), (".build-running", 10)):
        (cache / name).mkdir()
        (cache / name / "kernel.so").write_bytes(b"partial")
        os.utime(cache / name, (time.time() - age,) * 2)
    _runs_the_kernel(scan)
    assert _leftovers(cache) == [".build-running"]  # another process may still be building there


@pytest.mark.parametrize("where", ["folder", "library"])
def test_a_cache_owned_by_another_user_is_refused(env, scan, monkeypatch, where):
    _built(env)
    real = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real + 1)
    monkeypatch.setattr(_kernel_build, "_secure_folder", _kernel_build._secure_folder if where == "folder" else (lambda f: f))
    _falls_back(rf"the kernel cache .* is owned by uid {real}, not by this user|the cached kernel .* is owned by uid {real}", scan)


def test_a_group_or_world_writable_cache_is_refused(env, scan):
    path = _built(env)
    os.chmod(env / "cache", 0o770)
    _falls_back(r"the kernel cache .* is writable by group or others \(mode 0770\); refusing", scan)
    os.chmod(env / "cache", 0o700)
    os.chmod(path, 0o757)
    load.cache_clear()
    _falls_back(r"the cached kernel .* is writable by group or others \(mode 0757\); refusing to load it", scan)


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.delenv("HH_JAX_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    with pytest.warns(UserWarning, match=r"XDG_CACHE_HOME='relative/cache' is a relative path"):
        assert cache_dir() == tmp_path / ".cache" / "hh_jax"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "hh_jax"


@pytest.mark.parametrize("value, off", [("1", True), ("true", True), ("YES", True), ("on", True),
                                        ("0", False), ("", False), ("false", False), ("no", False)])
def test_hh_jax_no_kernel_is_a_boolean(monkeypatch, value, off):
    monkeypatch.setenv("HH_JAX_NO_KERNEL", value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert disabled() is off


def test_hh_jax_no_kernel_0_keeps_the_kernel_and_1_falls_back_silently(env, scan, monkeypatch):
    monkeypatch.setenv("HH_JAX_NO_KERNEL", "0")
    _runs_the_kernel(scan)
    load.cache_clear()
    monkeypatch.setenv("HH_JAX_NO_KERNEL", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert library() == (None, "HH_JAX_NO_KERNEL is set")
        _runs_the_scan_loop(scan)


def test_unclear_environment_values_warn(monkeypatch):
    monkeypatch.setenv("HH_JAX_NO_KERNEL", "maybe")
    with pytest.warns(UserWarning, match=r"HH_JAX_NO_KERNEL='maybe' is not one of"):
        assert disabled() is False
    for bad in ("abc", "-1", "0", "nan"):
        monkeypatch.setenv("HH_JAX_COMPILE_TIMEOUT", bad)
        with pytest.warns(UserWarning, match=r"HH_JAX_COMPILE_TIMEOUT=.* is not a positive number"):
            assert _kernel_build.compile_timeout() == _kernel_build.COMPILE_TIMEOUT
