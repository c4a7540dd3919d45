"""Stopping what a test started: by its PID, never by name (the guide's rule for network tests)."""

import os
import signal
import subprocess


def stop_child(proc, timeout=15.0):
    """SIGTERM to a child process we started, by its PID; SIGKILL when it has not exited after
    `timeout` seconds. Returns its exit status (None for no process)."""
    if proc is None:
        return None
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            return proc.wait(5)
    return proc.returncode
