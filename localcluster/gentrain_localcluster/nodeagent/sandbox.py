"""The first process of a container: enters the pod's namespaces, mounts, then execs.

Run by the node agent as `python -m gentrain_localcluster.nodeagent.sandbox SPEC.json`.
It joins the pod's network namespace, takes a private mount namespace of its own,
bind-mounts the pod's volumes (and the termination-message file) at the paths the pod
spec names, drops to the pod's user, and replaces itself with the container's command —
so the process the agent waits on *is* the container's process.

Standard library only, single-threaded (unshare(CLONE_NEWNS) refuses threaded callers).
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWUTS = 0x04000000
MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str, target: str, flags: int) -> None:
    _check(_libc.mount(source.encode(), target.encode(), None, flags, None), f"mount {target}")


def _bind(source_fd: int, target: str, read_only: bool) -> None:
    """Bind-mounts what `source_fd` (an O_PATH descriptor) names onto `target`.

    Sources are opened before anything is mounted: a volume mounted over, say, /tmp must
    not hide another volume's source (or the project itself) that lives under /tmp."""
    source = f"/proc/self/fd/{source_fd}"
    target_path = Path(target)
    if Path(source).is_dir():
        target_path.mkdir(parents=True, exist_ok=True)
    else:
        target_path.parent.mkdir(parents=True, exist_ok=True)
        if not target_path.exists():
            target_path.touch()
    _mount(source, target, MS_BIND | MS_REC)
    if read_only:
        _mount(source, target, MS_BIND | MS_REMOUNT | MS_RDONLY)


def enter(spec: dict[str, object]) -> None:
    netns = spec.get("netns")
    if isinstance(netns, str):
        fd = os.open(netns, os.O_RDONLY)
        _check(_libc.setns(fd, CLONE_NEWNET), "setns(net)")
        os.close(fd)
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare(mount, uts)")
    hostname = str(spec.get("hostname") or "")
    if hostname:
        _check(_libc.sethostname(hostname.encode(), len(hostname.encode())), "sethostname")
    # Mounts made here must not leak back to the host or to other pods.
    _mount("none", "/", MS_REC | MS_PRIVATE)
    mounts = spec.get("mounts")
    keep = spec.get("keep") or []
    assert isinstance(mounts, list) and isinstance(keep, list)
    kept = {path: os.open(path, os.O_PATH) for path in keep if Path(path).exists()}
    sources = [os.open(mount["source"], os.O_PATH) for mount in mounts]
    for mount, fd in zip(mounts, sources, strict=True):
        _bind(fd, mount["target"], bool(mount["read_only"]))
    # The project's environment stands in for the image: it must stay where it is even if
    # a volume now covers one of its parents (an emptyDir on /tmp over a checkout in /tmp).
    for path, fd in kept.items():
        now, before = (Path(path).stat() if Path(path).exists() else None), os.fstat(fd)
        if now is None or (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
            _bind(fd, path, read_only=False)


def expose(paths: list[str], staging: str) -> None:
    """Makes each path reachable by a non-root user when an ancestor is private.

    The project's Python interpreter can live under a directory such as /root (mode
    0700) that an image would never use. In this container's mount namespace only, the
    private ancestor is covered by a traversable tmpfs holding just the exposed path.
    """
    for index, path in enumerate(paths):
        target = Path(path).resolve()
        private = next(
            (
                a
                for a in reversed(target.parents)
                if a != Path("/") and not a.stat().st_mode & 0o001
            ),
            None,
        )
        if private is None:
            continue
        keep = Path(staging) / str(index)
        keep.mkdir(parents=True, exist_ok=True)
        _mount(str(target), str(keep), MS_BIND | MS_REC)
        _check(
            _libc.mount(b"tmpfs", str(private).encode(), b"tmpfs", 0, b"mode=0711"),
            f"mount tmpfs on {private}",
        )
        target.mkdir(parents=True, exist_ok=True)
        _mount(str(keep), str(target), MS_BIND | MS_REC)


def drop_privileges(spec: dict[str, object]) -> None:
    uid, gid, groups = spec.get("uid"), spec.get("gid"), spec.get("groups")
    if isinstance(groups, list):
        os.setgroups([int(g) for g in groups])
    if isinstance(gid, int):
        os.setgid(gid)
    if isinstance(uid, int):
        os.setuid(uid)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    try:
        procs = spec.get("cgroup_procs")
        if isinstance(procs, str):  # the container's memory limit: joined before anything runs
            Path(procs).write_text(str(os.getpid()))
        enter(spec)
        exposed = spec.get("expose")
        if isinstance(exposed, list) and exposed:
            expose([str(p) for p in exposed], str(spec["staging"]))
        drop_privileges(spec)
        workdir = spec.get("workdir")
        if isinstance(workdir, str):
            os.chdir(workdir)
        argv = [str(a) for a in spec["argv"]]
        env = {str(k): str(v) for k, v in spec["env"].items()}
        os.execvpe(argv[0], argv, env)  # noqa: S606 - a container's argv, exactly as the pod says
    except OSError as error:
        # 127/126 as a shell would: command not found / could not run; the agent reports it.
        print(f"gentrain node agent: cannot start container: {error}", file=sys.stderr)
        sys.exit(127 if isinstance(error, FileNotFoundError) else 126)


if __name__ == "__main__":
    main()
