"""Kill points for the crash tests (``tests/reliability/test_kill.py``).

``LINAS_KILL_AT=NAME[:N]`` makes the process kill itself with SIGKILL the N-th time (default
1) it reaches a point whose name starts with ``NAME``: no cleanup, no ``finally``, exactly
what ``kill -9`` or a power cut does, at a place the test chooses. Points:

- ``write:<file name>``: an atomic write whose temporary file is complete but not yet renamed
  (every JSON, safetensors, checkpoint, ONNX, PNG and cache file of a run goes through it);
- ``step:<progress label>``: a step of a progress bar (data caching, LUT measurement, search,
  weight-sharing evaluation, final training).

Unset (the normal case) it costs one dictionary lookup per point.
"""

from __future__ import annotations

import os
import signal

ENV = "LINAS_KILL_AT"
_hits: dict[str, int] = {}


def reached(point: str) -> None:
    """Kill this process now if ``LINAS_KILL_AT`` names ``point`` and its count is due."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, sep, count = spec.rpartition(":")
    if not (sep and count.isdigit()):
        name, count = spec, "1"
    if not point.startswith(name):
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == int(count):
        os.kill(os.getpid(), signal.SIGKILL)
