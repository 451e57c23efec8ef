"""`count_compiles`: how many XLA backend compilations a block of test code triggers (the
recompile guards)."""

import contextlib

from jax._src import dispatch, monitoring  # the compile event has no public name


@contextlib.contextmanager
def count_compiles():
    """Counts XLA backend compilations inside the block (``n[0]``)."""
    n = [0]

    def listener(event, duration, **kw):
        if event == dispatch.BACKEND_COMPILE_EVENT:
            n[0] += 1

    monitoring.register_event_duration_secs_listener(listener)
    try:
        yield n
    finally:
        monitoring.unregister_event_duration_listener(listener)
