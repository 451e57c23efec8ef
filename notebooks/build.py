"""Build the notebooks from their percent-format sources and execute them (outputs committed).

Each ``notebooks/src/NN_name.py`` is split into cells at ``# %%`` (code) and ``# %% [markdown]``
(markdown, every line starting with ``# ``) markers, written to ``notebooks/NN_name.ipynb``
with nbformat and executed in place with nbclient (kernel ``python3``).

Usage (from the repository root)::

    PYTHONPATH=$PWD .venv/bin/python notebooks/build.py            # all sources
    PYTHONPATH=$PWD .venv/bin/python notebooks/build.py 02 04      # names starting with 02, 04
"""

import pathlib
import resource
import sys
import time

import nbformat
from nbclient import NotebookClient

HERE = pathlib.Path(__file__).resolve().parent


def cells_from_source(text: str) -> list:
    cells, kind, lines = [], None, []

    def flush():
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in body.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(body))
        elif kind == "code" and body:
            cells.append(nbformat.v4.new_code_cell(body))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def build(source: pathlib.Path, *, timeout: int = 300) -> pathlib.Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells_from_source(source.read_text())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    start = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    out = HERE / (source.stem + ".ipynb")
    nbformat.write(nb, out)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    print(f"{out.name}: executed in {time.perf_counter() - start:.1f} s wall, kernel CPU {cpu:.1f} s")
    return out


if __name__ == "__main__":
    prefixes = sys.argv[1:]
    for src in sorted((HERE / "src").glob("*.py")):
        if not prefixes or any(src.name.startswith(p) for p in prefixes):
            build(src)
