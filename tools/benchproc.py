"""Process helpers the benchmark tools share: peak RSS of a child, and stopping it by PID."""

import os
import signal
import subprocess


def peak_rss_mib(pid):
    """VmHWM of a running process in MiB (Linux /proc), NaN when unknown."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def stop(proc, timeout=15):
    """SIGTERM the process we started (by its PID), SIGKILL it if it lingers."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
