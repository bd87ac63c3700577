#!/usr/bin/env python3
# A socket-activated server that checks systemd's protocol
# (sd_listen_fds(3)) itself: LISTEN_PID is its own pid, LISTEN_FDS
# descriptors from 3 are listening sockets, LISTEN_FDNAMES names them,
# and /proc/self/fd holds nothing else.  It accepts one connection on
# descriptor 3, answers with what it saw (one JSON line) and exits: 0 when
# every check passed, 1 otherwise (the answer says which failed).
#
#   server.py [ARG ...]        (started by fdrun, Program or
#                               systemd-socket-activate)
import json
import os
import socket
import stat
import sys


def kind(fd):
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    if stat.S_ISSOCK(st.st_mode):
        s = socket.socket(fileno=os.dup(fd))
        try:
            listening = s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            family = {socket.AF_INET: "inet", socket.AF_INET6: "inet6",
                      socket.AF_UNIX: "unix"}.get(s.family, str(s.family))
            type_ = {socket.SOCK_STREAM: "stream", socket.SOCK_DGRAM: "dgram",
                     socket.SOCK_SEQPACKET: "seqpacket"}.get(s.type, str(s.type))
            return "socket %s %s%s" % (family, type_, " listening" if listening else "")
        finally:
            s.close()
    for test, name in ((stat.S_ISFIFO, "fifo"), (stat.S_ISCHR, "chr"),
                       (stat.S_ISREG, "file"), (stat.S_ISDIR, "dir")):
        if test(st.st_mode):
            return name
    return "other"


def main():
    # The listing's own descriptor is closed again by the time kind() asks.
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        k = kind(int(name))
        if k is not None:
            fds[int(name)] = k
    env = os.environ
    n = int(env.get("LISTEN_FDS", "-1")) if env.get("LISTEN_FDS", "").isdigit() else -1
    names = env["LISTEN_FDNAMES"].split(":") if "LISTEN_FDNAMES" in env else None
    failed = []
    if env.get("LISTEN_PID") != str(os.getpid()):
        failed.append("LISTEN_PID")
    if n < 1:
        failed.append("LISTEN_FDS")
    if names is not None and len(names) != n:
        failed.append("LISTEN_FDNAMES")
    for fd in range(3, 3 + max(n, 0)):
        if not (fds.get(fd) or "").endswith(" listening"):
            failed.append("fd %d" % fd)
    extra = sorted(fd for fd in fds if fd >= 3 + max(n, 0))
    if extra:
        failed.append("extra descriptors")
    report = {
        "pid": os.getpid(), "listen_pid": env.get("LISTEN_PID"), "listen_fds": n,
        "names": names, "fds": {str(k): v for k, v in sorted(fds.items())},
        "extra": extra, "argv": sys.argv[1:],
        "environment": sorted(k for k in env if k.startswith("LISTEN_")),
        "failed": failed,
    }
    if n >= 1:
        listener = socket.socket(fileno=3)
        conn, _ = listener.accept()
        conn.sendall((json.dumps(report) + "\n").encode())
        conn.close()
    else:
        sys.stdout.write(json.dumps(report) + "\n")
    sys.exit(1 if failed else 0)


main()
