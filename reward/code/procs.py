"""Finding and killing every process of a sandbox uid.

Each concurrent sandbox runs under its own otherwise-unused uid, so "every process with this real
uid" is exactly the sandbox's process tree, wherever it forked or ``setsid``-ed to. Signals go
through a pidfd opened after checking the uid, so a recycled pid is never hit.
"""

from __future__ import annotations

import os
import signal


def pids_of_uid(uid: int) -> list[int]:
    """Live (and zombie) pids whose real uid is ``uid``."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for name in entries:
        if not name.isdigit():
            continue
        # No cheap stat() prefilter on /proc/PID's owner: a process that made itself
        # non-dumpable shows up as owned by root there, and must not escape the sweep.
        if _real_uid(int(name)) == uid:
            found.append(int(name))
    return found


def _real_uid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def kill_uid(uid: int, exclude: tuple[int, ...] = ()) -> int:
    """SIGKILL every process of ``uid`` (except ``exclude``); returns how many were signalled."""
    n = 0
    for pid in pids_of_uid(uid):
        if pid in exclude:
            continue
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue
        try:
            if _real_uid(pid) == uid:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
                n += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return n
