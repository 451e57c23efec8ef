"""Notebooks 05-07 (dynamics, fitting, a recording) run headlessly as shipped.

Split from tests/test_notebooks.py (which executes 01-04) so that ``--dist loadfile`` runs the
notebooks on both workers; the runner is tests/notebook_runner.py.
"""

import pytest

from notebook_runner import execute, notebooks

ANALYSIS = notebooks("05_", "06_", "07_")


def test_there_are_analysis_notebooks():
    assert len(ANALYSIS) == 3, [p.name for p in ANALYSIS]


@pytest.mark.parametrize("path", ANALYSIS, ids=[p.stem for p in ANALYSIS])
def test_notebook_executes(path, monkeypatch):
    execute(path, monkeypatch)
