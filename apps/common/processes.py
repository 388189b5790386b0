"""Whether a process the suite started (a worker, the suite itself) is still running."""

from __future__ import annotations

__all__ = ["pid_alive"]


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id runs (a zombie, finished but not yet reaped, does not)."""
    if not pid:
        return False
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
