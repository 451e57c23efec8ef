"""Save and load: parameters as human-editable JSON, results as ``.npz``, any Module via Equinox.

**Parameter JSON format** (version 1). Units live in a header, values under their field names::

    {
      "format": "hh_jax.HHParams",
      "version": 1,
      "units": {"C": "uF/cm^2", "gNa": "mS/cm^2", "ENa": "mV", "gK": "mS/cm^2",
                "EK": "mV", "gL": "mS/cm^2", "EL": "mV", "V_th": "mV",
                "temperature": "degC", "q10": "1"},
      "params": {"C": 1.0, "gNa": 120.0, "ENa": 50.0, "gK": 36.0, "EK": -77.0,
                 "gL": 0.03, "EL": -54.387, "V_th": 20.0, "temperature": 6.3, "q10": 3.0}
    }

``temperature`` and ``q10`` came after the format's first version: a file without them loads
with their defaults (6.3 °C, 3.0: the rates unchanged).

A value is a number or a (nested) list of numbers for a heterogeneous population. Loading
checks every key: a missing, unknown or mistyped field, or a unit other than the one above,
raises `ValueError`/`TypeError` naming it. Every write is atomic (temporary file in the same
folder, then ``os.replace``), so a crash never leaves a half-written file.

Writes behave as ``open(path, "w")`` would, atomically: through a symbolic link to its target
(the link stays), refused with `PermissionError` onto a file the user made read-only (also when
running as root, where any write bit counts: root passes every permission check, so the mode
bits are the user's stated intent), and the replaced file keeps its permission bits (and, where
allowed, its owner and group). Unlike ``open``, the folder must be writable (the temporary file
is created there), and a hard link to the old file keeps the old content.
"""

import errno
import json
import os
import pathlib
import stat
import tempfile
import zipfile
from typing import Any, Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._params import SINCE_V1, UNITS as _FIELD_UNITS, HHParams
from ._result import RECORDABLE, SimulationResult
from ._vector_field import HHState

PARAM_UNITS = dict(_FIELD_UNITS)
"""Units of the `HHParams` fields as written in the JSON header (declared with the fields)."""

_PARAMS_FORMAT = "hh_jax.HHParams"
_RESULT_FORMAT = "hh_jax.SimulationResult"
_VERSION = 1


def _file_mode(path: pathlib.Path) -> int:
    """The mode `open(path, "w")` would give: the existing file's, else ``0666 & ~umask``."""
    if path.exists():
        return stat.S_IMODE(path.stat().st_mode)
    try:  # Linux: read the umask without changing it (os.umask is process-wide, racy with threads)
        with open("/proc/self/status") as f:
            mask = next(int(ln.split()[1], 8) for ln in f if ln.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def _may_write(path: pathlib.Path) -> bool:
    """Whether ``open(path, "w")`` may write an existing file, by its mode bits for root."""
    if os.geteuid() == 0:  # root passes os.access; a file with no write bit was made read-only
        return bool(path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return os.access(path, os.W_OK)


def _atomic_replace(path, write_path: Callable[[str], None]) -> pathlib.Path:
    """Write `path` whole or not at all: ``write_path(tmp)`` writes the content at a temporary
    name in the target's folder (an empty file already holding the mode and owner the target
    gets; a writer that needs a name, like HDF5, truncates it), then fsync and ``os.replace``; the
    temporary file goes on any error. A symlink is written through; a read-only target is
    refused (for root too)."""
    path = pathlib.Path(path)
    target = pathlib.Path(os.path.realpath(path)) if path.is_symlink() else path  # write through links
    folder = target.parent if str(target.parent) else pathlib.Path(".")
    if not folder.is_dir():
        raise ValueError(f"path: folder {str(folder)!r} does not exist.")
    old = target.stat() if target.is_file() else None
    if old is not None and not _may_write(target):
        raise PermissionError(errno.EACCES, "Permission denied (the file is read-only)", str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        os.chmod(tmp, _file_mode(target))  # mkstemp makes it 0600
        if old is not None and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
            try:  # keep the owner and group where allowed (root; a group the user is in)
                os.chown(tmp, old.st_uid, old.st_gid)
            except OSError:
                pass
        write_path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _atomic_write(path, write: Callable[[Any], None], mode: str) -> pathlib.Path:
    """`_atomic_replace` with ``write(f)`` on the temporary file opened in `mode` (``"w"``, ``"wb"``)."""
    def write_path(tmp):
        with open(tmp, mode) as f:
            write(f)

    return _atomic_replace(path, write_path)


def _fsync_folder(folder) -> None:
    """Make the renames in `folder` durable (best effort: not every system opens folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_keys(where: str, got, expected, optional=()) -> None:
    missing = [k for k in expected if k not in got and k not in optional]
    unknown = [k for k in got if k not in expected]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}.")
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; expected {list(expected)}.")


def _is_number_tree(x) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, (int, float)):
        return True
    return isinstance(x, list) and len(x) > 0 and all(_is_number_tree(v) for v in x)


def params_to_dict(params: HHParams) -> dict:
    """The JSON-ready dictionary of `params` (format in the module docstring)."""
    if not isinstance(params, HHParams):
        raise TypeError(f"params must be an HHParams, got {type(params).__name__}.")
    values = {}
    for name in HHParams.FIELDS:
        arr = np.asarray(getattr(params, name), dtype=float)
        values[name] = float(arr) if arr.ndim == 0 else arr.tolist()
    return {"format": _PARAMS_FORMAT, "version": _VERSION, "units": dict(PARAM_UNITS), "params": values}


def params_from_dict(data: dict) -> HHParams:
    """An `HHParams` from a dictionary in the JSON format; errors name the offending key."""
    if not isinstance(data, dict):
        raise TypeError(f"parameter file must hold a JSON object, got {type(data).__name__}.")
    _check_keys("parameter file", data, ("format", "version", "units", "params"))
    if data["format"] != _PARAMS_FORMAT:
        raise ValueError(f"format: expected {_PARAMS_FORMAT!r}, got {data['format']!r}.")
    if data["version"] != _VERSION:
        raise ValueError(f"version: expected {_VERSION}, got {data['version']!r}.")
    for section in ("units", "params"):
        if not isinstance(data[section], dict):
            raise TypeError(f"{section}: expected a JSON object, got {type(data[section]).__name__}.")
    _check_keys("units", data["units"], HHParams.FIELDS, optional=SINCE_V1)
    _check_keys("params", data["params"], HHParams.FIELDS, optional=SINCE_V1)
    for name, unit in data["units"].items():
        if unit != PARAM_UNITS[name]:
            raise ValueError(f"units.{name}: expected {PARAM_UNITS[name]!r}, got {unit!r}.")
    for name, value in data["params"].items():
        if not _is_number_tree(value):
            raise TypeError(f"params.{name}: expected a number or a list of numbers, got {value!r}.")
    kw = {}
    for name, value in data["params"].items():
        try:
            kw[name] = np.asarray(value, dtype=float)
        except ValueError as e:  # ragged lists
            raise TypeError(f"params.{name}: not a rectangular array of numbers ({e}).") from None
    return HHParams(**kw)


def save_params(path, params: HHParams) -> pathlib.Path:
    """Write `params` to a human-editable JSON file (atomically).

    **Arguments:** `path`: file name (``.json`` recommended); `params`: an `HHParams` (scalar or
    array fields).

    **Returns:** the path written.

    **Example:** ``hh_jax.save_params("hh1952.json", hh_jax.HHParams.hh1952())``.
    """
    text = json.dumps(params_to_dict(params), indent=2) + "\n"
    return _atomic_write(path, lambda f: f.write(text), "w")


def load_params(path) -> HHParams:
    """Read an `HHParams` written by :func:`save_params` (or edited by hand).

    **Arguments:** `path`: the JSON file.

    **Returns:** an `HHParams`. A missing, unknown or mistyped field, or a wrong unit, raises
    `ValueError`/`TypeError` naming it; invalid JSON raises `ValueError` with the line.

    **Example:** ``p = hh_jax.load_params("hh1952.json")``.
    """
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e}).") from None
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start}).") from None
        except RecursionError:
            raise ValueError(f"{path}: JSON nested too deeply to be a parameter file.") from None
    return params_from_dict(data)


_STATE_KEYS = tuple(f"final_state.{k}" for k in ("V", "m", "h", "n"))
_RESULT_ARRAYS = ("t", "spike_count", "spike_times", "finite") + _STATE_KEYS


NWB_AREA_UM2 = 1000.0
"""Default membrane area, µm², of an NWB export (10 pF at 1 µF/cm²): densities become whole-cell currents."""


def save_result(path, result: SimulationResult, *, format: str = "npz", stimulus=None,
                params: HHParams | None = None, area_um2: float = NWB_AREA_UM2) -> pathlib.Path:
    """Write a `SimulationResult` to an ``.npz`` file, or as NWB current-clamp sweeps (atomically).

    ``npz`` keys: ``t``, ``spike_count``, ``spike_times``, ``finite``, ``final_state.V`` …
    ``.n``, ``duration`` and ``dt`` (ms), the recorded traces by name, and ``format``/``version``.

    ``nwb`` (needs the extra ``data``: ``pip install 'hh_jax[data]'``): one sweep per neuron,
    numbered 0 … S−1 in the population's row-major order: a ``CurrentClampSeries`` of the
    recorded V (stored in mV, ``conversion = 1e-3``, unit volts) and a
    ``CurrentClampStimulusSeries`` of `stimulus` at the same times as a whole-cell current
    (density × `area_um2`, stored in pA, ``conversion = 1e-12``, unit amperes), linked in the
    intracellular-recordings table; `params`, the area, dt and the duration go into the file's
    ``notes`` (JSON under ``"hh_jax"``). `hh_jax.fit.load_nwb` reads it back.

    **Arguments:** `path`: file name (``.npz`` or ``.nwb``); `result`: from :func:`hh_jax.simulate`
    (with ``V`` recorded, for NWB); `format`: ``"npz"`` (default) or ``"nwb"``; for NWB only:
    `stimulus`: the simulation's current, µA/cm² (an `AbstractStimulus` or a number; default
    None: no stimulus series), `params`: the `HHParams` simulated (default None), `area_um2`:
    membrane area, µm², default 1000.

    **Returns:** the path written.

    **Example:** ``hh_jax.save_result("run.npz", hh_jax.simulate(p, 10.0, duration=50.0, dt=0.01))``;
    ``hh_jax.save_result("run.nwb", r, format="nwb", stimulus=10.0, params=p)``.
    """
    if not isinstance(result, SimulationResult):
        raise TypeError(f"result must be a SimulationResult, got {type(result).__name__}.")
    if format == "nwb":
        return _save_result_nwb(path, result, stimulus=stimulus, params=params, area_um2=area_um2)
    if format != "npz":
        raise ValueError(f"format must be 'npz' or 'nwb', got {format!r}.")
    if stimulus is not None or params is not None or area_um2 != NWB_AREA_UM2:
        raise ValueError("stimulus, params and area_um2 apply to format='nwb' only.")
    arrays = {
        "format": np.asarray(_RESULT_FORMAT),
        "version": np.asarray(_VERSION),
        "duration": np.asarray(result.duration),
        "dt": np.asarray(result.dt),
        "t": np.asarray(result.t),
        "spike_count": np.asarray(result.spike_count),
        "spike_times": np.asarray(result.spike_times),
        "finite": np.asarray(result.finite),
    }
    for k, key in zip(("V", "m", "h", "n"), _STATE_KEYS):
        arrays[key] = np.asarray(getattr(result.final_state, k))
    for name in RECORDABLE:
        value = getattr(result, name)
        if value is not None:
            arrays[name] = np.asarray(value)
    return _atomic_write(path, lambda f: np.savez(f, **arrays), "wb")


def _save_result_nwb(path, result, *, stimulus, params, area_um2) -> pathlib.Path:
    from ._nwb import write_nwb
    from ._stimulus import AbstractStimulus, as_stimulus

    if result.V is None:
        raise ValueError("save_result(format='nwb'): the result has no voltage trace; simulate with record=('V', ...).")
    if isinstance(area_um2, bool) or not isinstance(area_um2, (int, float)) or not np.isfinite(area_um2) or area_um2 <= 0:
        raise ValueError(f"area_um2 must be a positive finite number (um^2), got {area_um2!r}.")
    if params is not None and not isinstance(params, HHParams):
        raise TypeError(f"params must be an HHParams or None, got {type(params).__name__}.")
    if stimulus is not None and not isinstance(stimulus, (AbstractStimulus, int, float)):
        raise TypeError(f"stimulus must be an AbstractStimulus or a number, got {type(stimulus).__name__}.")
    t = np.asarray(result.t, float)
    V = np.asarray(result.V, float)
    V = V.reshape(t.size, -1)
    if t.size < 2:
        raise ValueError("save_result(format='nwb'): the result holds fewer than 2 samples.")
    dt = float(t[1] - t[0])
    if result.dt > 0:  # the exact sample spacing (k steps of dt), not a float32 difference
        dt = max(1, round(dt / float(result.dt))) * float(result.dt)
    I_pA = None
    if stimulus is not None:
        import jax

        stim = as_stimulus(stimulus)
        dens = np.asarray(jax.vmap(stim)(jnp.asarray(result.t)), float)
        pop = np.asarray(result.V).shape[1:]  # the stimulus' population shape broadcasts to it
        dens = np.moveaxis(np.broadcast_to(np.moveaxis(dens, 0, -1), (*pop, t.size)), -1, 0)
        I_pA = dens.reshape(t.size, -1) * (float(area_um2) / 100.0)
    meta = {"area_um2": float(area_um2), "dt_ms": dt, "duration_ms": float(result.duration),
            "population_shape": list(np.asarray(result.V).shape[1:]),
            "params": None if params is None else params_to_dict(params)}
    return _atomic_replace(path, lambda tmp: write_nwb(tmp, dt=dt, V=V, I_pA=I_pA, t0=float(t[0]),
                                                         description="hh_jax simulation", metadata=meta))


_ZIP_MAGIC = b"PK\x03\x04"


def _not_npz(path) -> str | None:
    """What the file at `path` is, when it is plainly not an ``.npz`` archive (else None)."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(_ZIP_MAGIC) or head.startswith(b"PK\x05\x06"):
        return None
    if not head:
        return "the file is empty"
    if head.startswith(b"\x93NUMPY"):
        return "a single .npy array, not an .npz archive"
    if head[:1] == b"\x80":
        return "a pickle file, which is never loaded"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    try:
        text.decode("utf-8")
        kind = "a JSON file" if text[:1] in (b"{", b"[") else "a text file"
    except UnicodeDecodeError:
        kind = "not a zip archive"
    return f"{kind}, starting {head[:20]!r}"


def _read_npz(path) -> dict:
    """Every array of an ``.npz`` archive; a one-line `ValueError` for anything that is not one."""
    try:
        what = _not_npz(path)
        if what is not None:
            raise ValueError(f"{what}; expected an .npz archive written by hh_jax.save_result")
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an .npz archive")
        with z:
            return {k: z[k] for k in z.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, KeyError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "pickled" in msg or "Object arrays" in msg:
            msg = "holds pickled/object data, which is never loaded"
        raise ValueError(f"{path}: not a readable .npz archive ({msg}).") from None


def _check_result_arrays(path, data: dict) -> None:
    """Types, shapes and values of a result archive's arrays; errors name the key."""
    def scalar(key, kinds):
        a = data[key]
        if a.shape != () or a.dtype.kind not in kinds:
            raise ValueError(f"{path}: {key} must be a scalar of kind {kinds!r}, got {a.dtype} {a.shape}.")
        return a[()]

    if str(scalar("format", "U")) != _RESULT_FORMAT:
        raise ValueError(f"{path}: format: expected {_RESULT_FORMAT!r}, got {str(data['format'])!r}.")
    if scalar("version", "iu") != _VERSION:
        raise ValueError(f"{path}: version: expected {_VERSION}, got {data['version']!r}.")
    for key in ("duration", "dt"):
        if not (np.isfinite(scalar(key, "iuf")) and data[key] > 0):
            raise ValueError(f"{path}: {key} must be a positive finite number (ms), got {data[key]!r}.")
    kinds = {"finite": "b", "spike_count": "iu"}
    for key, a in data.items():
        if key not in ("format", "version", "duration", "dt") and a.dtype.kind not in kinds.get(key, "f"):
            raise ValueError(f"{path}: {key} has dtype {a.dtype}; expected {'bool' if key == 'finite' else 'numbers'}.")
    t, pop = data["t"], data["final_state.V"].shape
    if t.ndim != 1 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ValueError(f"{path}: t must be a 1-D array of strictly increasing finite times (ms).")
    want = {"spike_count": pop, "finite": ()} | {k: pop for k in _STATE_KEYS}
    want |= {name: (t.size,) + pop for name in RECORDABLE if name in data}
    for key, shape in want.items():
        if data[key].shape != shape:
            raise ValueError(f"{path}: {key} has shape {data[key].shape}, expected {shape}.")
    if data["spike_times"].shape[1:] != pop:
        raise ValueError(f"{path}: spike_times has shape {data['spike_times'].shape}, expected [max_spikes, *{pop}].")


def load_result(path) -> SimulationResult:
    """Read a `SimulationResult` written by :func:`save_result`.

    **Arguments:** `path`: the ``.npz`` file.

    **Returns:** a `SimulationResult` (JAX arrays). A file that is not an ``.npz`` archive (or
    holds pickled data), a missing or unknown key, or an array of the wrong dtype or shape raises
    a one-line `ValueError` naming the file and the key.

    **Example:** ``r = hh_jax.load_result("run.npz"); r.spike_count``.
    """
    data = _read_npz(path)
    expected = ("format", "version", "duration", "dt") + _RESULT_ARRAYS
    _check_keys(f"{path}", {k: None for k in data if k not in RECORDABLE}, expected)
    _check_result_arrays(path, data)
    state = HHState(**{k: jnp.asarray(data[key]) for k, key in zip(("V", "m", "h", "n"), _STATE_KEYS)})
    traces = {name: jnp.asarray(data[name]) for name in RECORDABLE if name in data}
    return SimulationResult(
        t=jnp.asarray(data["t"]),
        spike_count=jnp.asarray(data["spike_count"]),
        spike_times=jnp.asarray(data["spike_times"]),
        final_state=state,
        finite=jnp.asarray(data["finite"]),
        duration=float(data["duration"]),
        dt=float(data["dt"]),
        **traces,
    )


def save_module(path, module) -> pathlib.Path:
    """Write the array leaves of any PyTree/`eqx.Module` with ``eqx.tree_serialise_leaves``.

    Only leaves are stored; loading needs a *like* object of the same structure.

    **Arguments:** `path`: file name (``.eqx`` recommended); `module`: any PyTree.

    **Returns:** the path written.

    **Example:** ``hh_jax.save_module("state.eqx", result.final_state)``.
    """
    return _atomic_write(path, lambda f: eqx.tree_serialise_leaves(f, module), "wb")


def load_module(path, like):
    """Read leaves written by :func:`save_module` into the structure of `like`.

    **Arguments:** `path`: the file; `like`: a PyTree of the same structure, shapes and dtypes
    (e.g. ``hh_jax.HHParams()`` or ``hh_jax.steady_state_at(-65.0, shape=10)``).

    **Returns:** a PyTree like `like` with the stored leaves. A leaf whose shape, dtype or type
    differs raises `ValueError` naming its path; a file with too few or too many leaves raises
    `ValueError`.

    **Example:** ``y0 = hh_jax.load_module("state.eqx", hh_jax.steady_state_at(-65.0))``.
    """
    with open(path, "rb") as f:
        try:
            out = eqx.tree_deserialise_leaves(f, like)
        except RuntimeError as e:
            cause = e
            while cause.__cause__ is not None and cause.__cause__ is not cause:
                cause = cause.__cause__
            what = "file ends early" if isinstance(cause, EOFError) else str(cause).splitlines()[0]
            if "pickled" in what:
                what = "not leaves written by save_module"
            head = str(e).splitlines()[0].rstrip(".")
            raise ValueError(f"{path}: {head}" + ("" if what == head else f" ({what})") + ".") from None
        except (ValueError, EOFError, OSError) as e:
            raise ValueError(f"{path}: file does not match the structure of `like` ({e}).") from None
        if f.read(1):
            raise ValueError(f"{path}: file holds more leaves than `like` has; wrong `like` object?")
    return out
