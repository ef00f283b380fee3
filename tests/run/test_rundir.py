"""One run directory, one writer: a live holder refuses a second run; a dead one's lock is
taken over with a message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from linas._errors import ConfigError
from linas.run.rundir import LOCK_FILE, run_lock

HOLD = """
import sys, time
from linas.run.rundir import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_second_writer_is_refused_and_a_dead_holder_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match=rf"in use by another linas process \(pid "
                                              rf"{holder.pid}\)"):
            with run_lock(tmp_path):
                pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # a crash: the lock file keeps the dead pid
        holder.wait()
    messages: list[str] = []
    with run_lock(tmp_path, messages.append):
        assert (tmp_path / LOCK_FILE).read_text() == str(os.getpid())
    assert messages and f"pid {holder.pid}" in messages[0] and "no longer running" in messages[0]
    messages.clear()
    with run_lock(tmp_path, messages.append):  # a clean release leaves no stale pid
        time.sleep(0)
    assert messages == []


def test_a_file_is_not_a_run_directory(tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        with run_lock(path):
            pass
