"""The notebooks under notebooks/ and how the tests execute them (headless, as committed).

Shared by tests/test_notebooks.py (structure, seed checks, notebooks 01-04) and
tests/test_notebooks_analysis.py (notebooks 05-07): `make test` runs with ``--dist loadfile``, so
two files put the notebooks on both xdist workers.
"""

import os
import pathlib

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 120  # s per cell; a whole notebook should take well under 30 s on 2 cores


def notebooks(*prefixes: str) -> list:
    """The committed notebooks whose names start with one of `prefixes` (e.g. ``"05_"``)."""
    return [p for p in NOTEBOOKS if p.name.startswith(prefixes)]


def execute(path: pathlib.Path, monkeypatch) -> None:
    """Run the notebook at `path` with nbclient exactly as committed (no parameters injected);
    the kernel imports this checkout's hh_jax. Raises CellExecutionError naming a failing cell."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
