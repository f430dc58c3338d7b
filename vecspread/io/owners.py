"""Which process left a temporary file, and whether it still runs: safe across hosts and PID namespaces.

A temporary file's name carries its writer's tag ``PID.MACHINE-NAMESPACE-START``: the process id, the first
12 hex digits of the kernel's boot id (one per machine and boot, shared by the containers of a host), the
PID namespace (containers each have their own), and the process's start time in clock ticks since boot (a
reused PID has another). A file is stale only when its tag names this machine and PID namespace and no
process with that PID and start time runs; a tag from another machine or namespace is never taken for
stale, since its writer cannot be seen from here.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import socket

TAG_PATTERN = re.compile(r"(?P<pid>\d+)\.(?P<machine>[0-9a-f]{12})-(?P<namespace>\d+)-(?P<start>\d+)")


def process_tag(pid: int | None = None) -> str:
    """This process's tag (or that of the running process ``pid``), e.g. ``'4242.96029f3cfa6b-4026531836-553318'``."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}.{machine_id()}-{pid_namespace()}-{start_time(pid) or 0}"


def is_stale(tag: str) -> bool:
    """Whether the process ``tag`` names has ended, as far as this process can know."""
    m = TAG_PATTERN.fullmatch(tag)
    if m is None or m["machine"] != machine_id() or int(m["namespace"]) != pid_namespace():
        return False  # not ours to judge
    pid = int(m["pid"])
    if pid == os.getpid():
        return False
    started = start_time(pid)
    if started is None:
        return not _pid_runs(pid)
    return started != int(m["start"])  # the PID was reused by a newer process


@functools.lru_cache(maxsize=1)
def machine_id() -> str:
    """12 hex digits naming this machine and boot (the kernel's boot id; a hash of the host name elsewhere)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            text = f.read().strip().replace("-", "")
        if re.fullmatch(r"[0-9a-f]{12,}", text):
            return text[:12]
    except OSError:
        pass
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def pid_namespace() -> int:
    """The inode of this process's PID namespace (0 where the system has none)."""
    try:
        return int(re.sub(r"\D", "", os.readlink("/proc/self/ns/pid")) or 0)
    except OSError:
        return 0


def start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (None when unknown or when it does not run)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "(comm)", which may itself hold spaces
    try:
        return int(fields[19])  # field 22 of the whole line
    except (IndexError, ValueError):
        return None


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
