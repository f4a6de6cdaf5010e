"""packaging/init.d/shrinkd, the init script for sysvinit and BusyBox init, run against a stub daemon.

The script's paths (DAEMON, PIDFILE, RUNDIR, STATEDIR, MODPROBE) are pointed into a temporary
folder; a small sh script stands in for /usr/bin/shrinkd and records what it is asked and the
signals it gets. Run by dash with Debian's start-stop-daemon, and by BusyBox's sh with BusyBox's
start-stop-daemon and sleep (Buildroot's init), where they are installed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import pytest

from tests.vm import REPO

SCRIPT = REPO / "packaging" / "init.d" / "shrinkd"

# Stands in for /usr/bin/shrinkd: records its arguments, SIGHUP and SIGTERM; on SIGTERM it
# takes a moment to finish (as shrinkd puts vfs_cache_pressure back), unless told to hang.
STUB = """#!/bin/sh
log="{log}"
echo "pid $$" >> "$log"
echo "args $*" >> "$log"
trap 'echo hup >> "$log"' HUP
trap 'echo term >> "$log"; [ -e "{hang}" ] && trap "" TERM && while :; do sleep 0.1; done; sleep 0.3; exit 0' TERM
while :; do sleep 0.1; done
"""


def shells() -> List[str]:
    found = []
    if shutil.which("dash") and shutil.which("start-stop-daemon"):
        found.append("dash")
    if shutil.which("busybox"):
        found.append("busybox")
    return found


class Init:
    def __init__(self, tmp: Path, shell: str) -> None:
        self.tmp, self.shell = tmp, shell
        self.log, self.pidfile, self.hang = tmp / "stub.log", tmp / "run" / "shrinkd.pid", tmp / "hang"
        (tmp / "run").mkdir()
        daemon = tmp / "shrinkd"
        daemon.write_text(STUB.format(log=self.log, hang=self.hang))
        daemon.chmod(0o755)
        modprobe = tmp / "modprobe"
        modprobe.write_text(f'#!/bin/sh\necho "modprobe $*" >> "{tmp / "modprobe.log"}"\nexit 1\n')
        modprobe.chmod(0o755)
        text = SCRIPT.read_text()
        for name, value in (("DAEMON", daemon), ("PIDFILE", self.pidfile), ("RUNDIR", tmp / "rundir"),
                            ("STATEDIR", tmp / "statedir"), ("MODPROBE", modprobe), ("STOP_TIMEOUT", "2")):
            text, count = re.subn(rf"^{name}=.*$", f"{name}={value}", text, flags=re.M)
            assert count == 1, name
        self.script = tmp / "init"
        self.script.write_text(text)
        self.env = dict(os.environ)
        if shell == "busybox":
            applets = tmp / "bin"
            applets.mkdir()
            for applet in ("start-stop-daemon", "sleep", "kill", "mkdir", "cat", "rm", "sh"):
                (applets / applet).symlink_to(shutil.which("busybox") or "busybox")
            self.env["PATH"] = f"{applets}:{os.environ['PATH']}"

    def __call__(self, action: str) -> subprocess.CompletedProcess[str]:
        command = ["busybox", "sh"] if self.shell == "busybox" else ["dash"]
        return subprocess.run([*command, str(self.script), action], capture_output=True, text=True, check=False,
                              env=self.env, timeout=30)

    def events(self) -> List[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def wait_for(self, line: str, count: int = 1) -> None:
        deadline = time.monotonic() + 5
        while self.events().count(line) < count:
            assert time.monotonic() < deadline, (line, self.events())
            time.sleep(0.05)

    def pid(self) -> int:
        return int(self.pidfile.read_text())


def become_init(log: Path) -> Callable[[], None]:
    """Make this process the reaper of the daemons start-stop-daemon leaves (PR_SET_CHILD_SUBREAPER)
    and reap them as init would, from a thread (only the stubs' pids, from their log: the
    init script's own processes are subprocess's to wait for). A daemon that ended is then
    gone, not a zombie that the script's kill -0 still finds. Returns what stops the thread."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(36, 1, 0, 0, 0) == 0, os.strerror(ctypes.get_errno())
    done = threading.Event()

    def reap() -> None:
        while not done.wait(0.02):
            lines = log.read_text().splitlines() if log.exists() else []
            for line in lines:
                if line.startswith("pid "):
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(int(line[4:]), os.WNOHANG)

    thread = threading.Thread(target=reap, daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        thread.join()
        libc.prctl(36, 0, 0, 0, 0)

    return stop


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(params=shells() or ["none"])
def init(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Dict[str, Init]]:
    if request.param == "none":
        pytest.skip("dash with start-stop-daemon, or busybox, is needed")
    runner = Init(tmp_path, request.param)
    stop_reaping = become_init(runner.log)
    yield {"run": runner}
    if runner.pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(runner.pid(), 9)
    stop_reaping()


def test_start_status_reload_stop(init: Dict[str, Init]) -> None:
    run = init["run"]
    assert run("status").returncode == 3  # LSB: not running
    started = run("start")
    assert started.returncode == 0 and "OK" in started.stdout, started.stdout + started.stderr
    run.wait_for("args run")
    pid = run.pid()
    assert alive(pid)
    # the module is loaded first; the stub modprobe refuses, and the daemon starts all the same
    assert (run.tmp / "modprobe.log").read_text() == "modprobe -q shrinkmem\n"
    assert (run.tmp / "rundir").is_dir() and (run.tmp / "statedir").is_dir()
    status = run("status")
    assert status.returncode == 0 and f"pid {pid}" in status.stdout
    # a second start starts nothing
    assert run("start").returncode == 0 and run.events().count("args run") == 1 and run.pid() == pid
    reloaded = run("reload")
    assert reloaded.returncode == 0, reloaded.stdout
    run.wait_for("hup")
    assert alive(pid)
    stopped = run("stop")
    assert stopped.returncode == 0 and "OK" in stopped.stdout, stopped.stdout + stopped.stderr
    # stop returns once the daemon has finished, not when the signal is sent
    assert "term" in run.events() and not alive(pid)
    assert not run.pidfile.exists()
    assert run("status").returncode == 3
    assert run("reload").returncode == 1
    assert run("stop").returncode == 0


def test_restart_runs_a_new_daemon(init: Dict[str, Init]) -> None:
    run = init["run"]
    assert run("start").returncode == 0
    run.wait_for("args run")
    first = run.pid()
    assert run("restart").returncode == 0
    run.wait_for("args run", 2)
    assert run.pid() != first and not alive(first) and alive(run.pid())
    assert run("stop").returncode == 0


def test_status_of_a_dead_daemon_and_stop_of_a_hung_one(init: Dict[str, Init]) -> None:
    run = init["run"]
    assert run("start").returncode == 0
    run.wait_for("args run")
    os.kill(run.pid(), 9)
    deadline = time.monotonic() + 5
    while alive(run.pid()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    dead = run("status")
    assert dead.returncode == 1 and "exists" in dead.stdout  # LSB: dead, pidfile left
    assert run("start").returncode == 0  # a stale pidfile does not stop a start
    run.wait_for("args run", 2)
    run.hang.touch()
    hung = run.pid()
    stopped = run("stop")  # ignores SIGTERM: killed after STOP_TIMEOUT
    assert stopped.returncode == 1 and "killed" in stopped.stdout, stopped.stdout
    deadline = time.monotonic() + 5
    while alive(hung):
        assert time.monotonic() < deadline, (Path(f"/proc/{hung}/status").read_text(), run.events())
        time.sleep(0.05)


def test_usage_and_a_removed_daemon(init: Dict[str, Init]) -> None:
    run = init["run"]
    bogus = run("bogus")
    assert bogus.returncode == 2 and "Usage:" in bogus.stderr
    # removed but not purged (the script left in /etc/init.d): nothing to do, no error
    (run.tmp / "shrinkd").unlink()
    assert run("start").returncode == 0 and run.events() == []
