"""Only root steers the daemon: configuration files, drop-in directories and the directories
above them that someone else could change are refused (shrinkd.configload.untrusted).

Files are made with other owners (nobody, uid 65534) and modes, so every refusal is seen
happening; the tests that give a file away run as root, as CI does.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, List

import pytest

from shrinkd import configload
from shrinkd.daemon import Daemon
from shrinkd.errors import ConfigError
from shrinkd.journal import Journal

from .configs import config_from
from .fakekernel import Clock, Tree

REPO = Path(__file__).resolve().parent.parent
NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give files to another user")

GOOD = "guards:\n  cooldown: 30\nlog:\n  target: stderr\npsi:\n  wakeup: false\n"


@pytest.fixture
def home() -> Iterator[Path]:
    """A directory every user can walk into (pytest's own are 0700), owned by root or the tester, mode 0755."""
    path = Path(tempfile.mkdtemp(prefix="shrinkd-trust-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=True)


def put(path: Path, text: str = GOOD, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def me() -> str:
    return "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"


# -- what is trusted -------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600, 0o400, 0o444])
def test_a_file_only_its_owner_can_write_is_trusted(home: Path, mode: int) -> None:
    assert configload.untrusted(str(put(home / "shrinkd.yaml", mode=mode))) is None


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666, 0o620, 0o602])
def test_a_file_group_or_others_can_write_is_refused(home: Path, mode: int) -> None:
    path = put(home / "shrinkd.yaml", mode=mode)
    problem = configload.untrusted(str(path))
    assert problem is not None
    assert problem.endswith(f", mode {mode:04o}: writable by group or others")
    assert problem.startswith("owner ")


@as_root
def test_a_file_owned_by_another_user_is_refused(home: Path) -> None:
    path = put(home / "shrinkd.yaml")
    os.chown(path, NOBODY, NOBODY)
    assert configload.untrusted(str(path)) == "owner nobody (uid 65534), mode 0644: not owned by root"


@as_root
def test_an_unknown_owner_is_named_by_uid(home: Path) -> None:
    path = put(home / "shrinkd.yaml")
    os.chown(path, 54321, 54321)
    assert configload.untrusted(str(path)) == "owner ? (uid 54321), mode 0644: not owned by root"


@as_root
def test_the_user_shrinkd_runs_as_may_own_its_files(home: Path) -> None:
    # As sshd accepts root or the user: a daemon run by uid 4242 trusts 4242's files, not 4243's.
    path = put(home / "shrinkd.yaml")
    os.chown(path, 4242, 4242)
    assert configload.untrusted(str(path), owners=(0, 4242)) is None
    os.chown(path, 4243, 4243)
    assert configload.untrusted(str(path), owners=(0, 4242)) == (
        "owner ? (uid 4243), mode 0644: not owned by root or uid 4242"
    )


# -- the directories above -----------------------------------------------------------


def test_a_writable_directory_above_is_refused(home: Path) -> None:
    path = put(home / "etc" / "shrinkd" / "shrinkd.yaml")
    (home / "etc").chmod(0o777)
    assert configload.untrusted(str(path)) == (
        f"directory {home / 'etc'}: owner {me()}, mode 0777: writable by group or others"
    )


def test_a_sticky_directory_above_is_trusted(home: Path) -> None:
    # As /tmp: others may create names there, but not rename or remove what is not theirs.
    path = put(home / "sticky" / "shrinkd.yaml")
    (home / "sticky").chmod(0o1777)
    assert configload.untrusted(str(path)) is None


def test_a_sticky_bit_does_not_excuse_the_file_itself(home: Path) -> None:
    path = put(home / "shrinkd.yaml", mode=0o1666)
    problem = configload.untrusted(str(path))
    assert problem is not None and problem.endswith("mode 1666: writable by group or others")


@as_root
def test_a_directory_above_owned_by_another_user_is_refused(home: Path) -> None:
    path = put(home / "alice" / "shrinkd.yaml")
    os.chown(home / "alice", NOBODY, NOBODY)
    assert configload.untrusted(str(path)) == (
        f"directory {home / 'alice'}: owner nobody (uid 65534), mode 0755: not owned by root"
    )


# -- symlinks: the target, and every directory holding a link on the way --------------


def test_a_symlink_to_a_trusted_file_is_trusted(home: Path) -> None:
    put(home / "real" / "shrinkd.yaml")
    (home / "etc").mkdir()
    (home / "etc" / "shrinkd.yaml").symlink_to("../real/shrinkd.yaml")
    assert configload.untrusted(str(home / "etc" / "shrinkd.yaml")) is None


def test_a_symlink_into_a_writable_directory_is_refused(home: Path) -> None:
    put(home / "open" / "shrinkd.yaml")
    (home / "open").chmod(0o777)
    (home / "shrinkd.yaml").symlink_to(home / "open" / "shrinkd.yaml")
    assert configload.untrusted(str(home / "shrinkd.yaml")) == (
        f"directory {home / 'open'}: owner {me()}, mode 0777: writable by group or others"
    )


def test_a_link_in_the_middle_of_a_chain_is_checked_where_it_lives(home: Path) -> None:
    # etc/shrinkd.yaml -> open/hop -> real/shrinkd.yaml: realpath() would only show real/,
    # but whoever can write open/ can point hop elsewhere.
    put(home / "real" / "shrinkd.yaml")
    (home / "open").mkdir(mode=0o755)
    (home / "open" / "hop").symlink_to(home / "real" / "shrinkd.yaml")
    (home / "open").chmod(0o777)
    (home / "etc").mkdir()
    (home / "etc" / "shrinkd.yaml").symlink_to(home / "open" / "hop")
    problem = configload.untrusted(str(home / "etc" / "shrinkd.yaml"))
    assert problem == f"directory {home / 'open'}: owner {me()}, mode 0777: writable by group or others"


def test_the_target_is_named_when_it_is_the_problem(home: Path) -> None:
    put(home / "real.yaml", mode=0o666)
    (home / "shrinkd.yaml").symlink_to("real.yaml")
    assert configload.untrusted(str(home / "shrinkd.yaml")) == (
        f"target {home / 'real.yaml'}: owner {me()}, mode 0666: writable by group or others"
    )


def test_a_symlink_loop_cannot_be_read(home: Path) -> None:
    (home / "a.yaml").symlink_to("b.yaml")
    (home / "b.yaml").symlink_to("a.yaml")
    assert configload.untrusted(str(home / "a.yaml")) == "cannot read: Too many levels of symbolic links"


def test_dotdot_after_a_symlink_is_walked_as_the_kernel_does(home: Path) -> None:
    # link/.. is the directory above the link's target, not the directory holding the link.
    put(home / "open" / "shrinkd.yaml")
    (home / "open").chmod(0o777)
    (home / "open" / "deep").mkdir()
    (home / "safe").mkdir()
    (home / "safe" / "link").symlink_to(home / "open" / "deep")
    path = f"{home}/safe/link/../shrinkd.yaml"
    assert Path(path).read_text() == GOOD  # the kernel agrees: it is open/shrinkd.yaml
    problem = configload.untrusted(path)
    assert problem == f"directory {home / 'open'}: owner {me()}, mode 0777: writable by group or others"


def test_a_fifo_is_not_a_regular_file(home: Path) -> None:
    os.mkfifo(home / "shrinkd.yaml", 0o600)
    problem = configload.untrusted(str(home / "shrinkd.yaml"))
    assert problem == f"owner {me()}, mode 0600: not a regular file"


def test_a_missing_file_cannot_be_read(home: Path) -> None:
    assert configload.untrusted(str(home / "nope.yaml")) == "cannot read: No such file or directory"


# -- resolve(): what run and reload read --------------------------------------------------


def test_resolve_refuses_a_writable_dropin_directory(home: Path) -> None:
    main = put(home / "shrinkd.yaml")
    put(home / "conf.d" / "10-a.yaml")
    (home / "conf.d").chmod(0o777)
    with pytest.raises(ConfigError) as caught:
        configload.resolve(None, main=main, dropins=home / "conf.d")
    assert str(caught.value) == f"{home / 'conf.d'}: owner {me()}, mode 0777: writable by group or others"
    assert caught.value.exit_code == 2


def test_resolve_refuses_an_empty_writable_dropin_directory(home: Path) -> None:
    # Nothing to read yet, but anyone could drop a file in before the next reload.
    (home / "conf.d").mkdir(mode=0o777)
    (home / "conf.d").chmod(0o777)
    with pytest.raises(ConfigError):
        configload.resolve(None, main=home / "absent.yaml", dropins=home / "conf.d")


@as_root
def test_resolve_refuses_a_dropin_given_away(home: Path) -> None:
    main = put(home / "shrinkd.yaml")
    put(home / "conf.d" / "10-a.yaml")
    late = put(home / "conf.d" / "50-b.yaml")
    os.chown(late, NOBODY, NOBODY)
    with pytest.raises(ConfigError) as caught:
        configload.resolve(None, main=main, dropins=home / "conf.d")
    assert str(caught.value) == f"{late}: owner nobody (uid 65534), mode 0644: not owned by root"


def test_resolve_returns_trusted_files_in_order(home: Path) -> None:
    main = put(home / "shrinkd.yaml")
    put(home / "conf.d" / "20-b.yaml")
    put(home / "conf.d" / "10-a.yaml")
    assert configload.resolve(None, main=main, dropins=home / "conf.d") == [
        str(main),
        str(home / "conf.d" / "10-a.yaml"),
        str(home / "conf.d" / "20-b.yaml"),
    ]


def test_resolve_with_warn_reads_an_untrusted_file_and_says_why(home: Path) -> None:
    path = put(home / "draft.yaml", mode=0o666)
    said: List[str] = []
    assert configload.resolve(str(path), warn=said.append) == [str(path)]
    assert said == [f"{path}: owner {me()}, mode 0666: writable by group or others"]


def test_resolve_with_warn_leaves_a_missing_file_to_the_reader(home: Path) -> None:
    said: List[str] = []
    assert configload.resolve(str(home / "nope.yaml"), warn=said.append) == [str(home / "nope.yaml")]
    assert said == []


# -- the command line: exit 2 at start-up, a warning from check-config ---------------------


def shrinkd(*args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    # setpriv, as tests/test_uapi.py: the interpreter may live under root's 0700 home, which
    # only an exec still holding root's rights can reach; the process then runs as `user`.
    become = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user is not None else []
    return subprocess.run(
        [*become, sys.executable, "-m", "shrinkd", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_run_refuses_a_world_writable_file_with_exit_2(home: Path, tmp_path: Path) -> None:
    tree = Tree(tmp_path / "kernel")
    path = put(home / "shrinkd.yaml", mode=0o666)
    result = shrinkd("run", "--once", "--config", str(path), "--proc-root", str(tree.proc), "--sys-root", str(tree.sys))
    assert result.returncode == 2
    assert result.stderr == f"shrinkd: {path}: owner {me()}, mode 0666: writable by group or others\n"
    assert result.stdout == ""


def test_check_config_of_a_given_file_warns_and_checks_it(home: Path) -> None:
    path = put(home / "draft.yaml", mode=0o666)
    result = shrinkd("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"shrinkd: warning: {path}: owner {me()}, mode 0666: writable by group or others (shrinkd run would refuse it)"
    ]
    assert result.stdout.startswith(f"{path}: OK (2 rules")


@as_root
def test_an_unprivileged_user_checks_their_own_file(home: Path) -> None:
    path = put(home / "mine.yaml")
    os.chown(path, NOBODY, NOBODY)
    result = shrinkd("check-config", str(path), user=NOBODY)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"shrinkd: warning: {path}: owner nobody (uid 65534), mode 0644: not owned by root (shrinkd run would refuse it)"
    ]
    # An error in it is still an error.
    path.write_text("guards:\n  cooldown: -1\n")
    result = shrinkd("check-config", str(path), user=NOBODY)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"shrinkd: {path}:2: guards.cooldown: must be between 0 and 86400, got -1"


# -- reload: the running configuration stays ----------------------------------------------


def test_reload_of_a_file_made_writable_keeps_the_running_configuration(home: Path, tmp_path: Path) -> None:
    tree = Tree(tmp_path / "kernel")
    path = put(home / "shrinkd.yaml")

    def load() -> object:  # as `shrinkd run --config FILE` loads, at start and on SIGHUP
        return configload.load_isolated(configload.resolve(str(path)))

    stream = io.StringIO()
    daemon = Daemon(
        tree.procfs,
        config_from(GOOD),
        Journal("stderr", stream=stream),
        reload=load,  # type: ignore[arg-type]
        clock=Clock(),
        page_size=4096,
        uevents=False,
        kernel_log=None,
    )
    daemon.start()
    try:
        path.write_text(GOOD.replace("cooldown: 30", "cooldown: 0"))
        path.chmod(0o666)  # anyone may now write it: the new text must not be taken
        daemon.reload()
        assert daemon.config.cooldown == 30.0
        path.chmod(0o644)
        daemon.reload()
        assert daemon.config.cooldown == 0.0
    finally:
        daemon.close()
    assert daemon.events == ["started", "reload_failed", "reloaded"]
    assert (
        f"shrinkd: reload failed, keeping the running configuration: {path}: owner {me()}, mode 0666: "
        "writable by group or others\n" in stream.getvalue()
    )


# -- what shrinkd writes: the status file ---------------------------------------------------


def test_the_status_file_never_follows_a_planted_link(tmp_path: Path) -> None:
    import json

    from shrinkd.events import Events

    run = tmp_path / "run"
    run.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("precious")
    path = run / "status.json"
    path.symlink_to(victim)  # a link where the file goes: the rename replaces the link itself
    stream = io.StringIO()
    told = Events(Journal("stderr", stream=stream))
    told.write_state(str(path), {"pid": 1})
    assert victim.read_text() == "precious"
    assert not path.is_symlink() and json.loads(path.read_text()) == {"pid": 1}
    # A link at the temporary name (shrinkd.safefile's): removed, never followed; the write goes on.
    (run / f".status.json.{os.getpid()}.tmp").symlink_to(victim)
    told.write_state(str(path), {"pid": 2})
    assert victim.read_text() == "precious"
    assert json.loads(path.read_text()) == {"pid": 2}
    # A directory others may write to: refused; the failure is said once, and writing stops.
    os.chmod(run, 0o777)
    told.write_state(str(path), {"pid": 3})
    os.chmod(run, 0o755)
    told.write_state(str(path), {"pid": 4})
    assert json.loads(path.read_text()) == {"pid": 2}
    assert stream.getvalue().count("state file") == 1
    assert f"state file {run}: writable by group or others (mode 0777)" in stream.getvalue()
