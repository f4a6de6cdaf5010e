"""The files shrinkd writes (trace, textfile): no symlink followed, unsafe directories refused, replaced whole."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shrinkd.safefile import OutputError, SafeDir, check_target

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ownership checks need root (CI runs as root)")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir(mode=0o755)
    os.chmod(path, 0o755)
    return path


def write(path: Path, data: bytes, keep: bool = False) -> None:
    with SafeDir(str(path.parent)) as directory:
        directory.replace(path.name, data, keep=keep)


def test_a_file_is_written_whole_with_its_mode_whatever_the_umask(folder: Path) -> None:
    old = os.umask(0o077)
    try:
        write(folder / "a.prom", b"one\n")
    finally:
        os.umask(old)
    assert (folder / "a.prom").read_bytes() == b"one\n"
    assert stat.S_IMODE((folder / "a.prom").stat().st_mode) == 0o644  # node_exporter must read it
    write(folder / "a.prom", b"two\n", keep=True)
    assert (folder / "a.prom").read_bytes() == b"one\ntwo\n"
    write(folder / "a.prom", b"three\n")
    assert (folder / "a.prom").read_bytes() == b"three\n"
    assert sorted(p.name for p in folder.iterdir()) == ["a.prom"]  # no temporary left


def test_a_symlink_at_the_name_is_replaced_not_followed(folder: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (folder / "a.prom").symlink_to(victim)
    write(folder / "a.prom", b"metrics\n")
    assert victim.read_text() == "precious\n"
    assert not (folder / "a.prom").is_symlink()
    assert (folder / "a.prom").read_bytes() == b"metrics\n"


def test_appending_to_a_symlink_is_refused(folder: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (folder / "trace").symlink_to(victim)
    with pytest.raises(OutputError, match=r"trace: cannot open: is a symbolic link: refusing to follow it$"):
        write(folder / "trace", b"more\n", keep=True)
    assert victim.read_text() == "precious\n"


def test_a_symlink_planted_at_the_temporary_name_is_not_followed(folder: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (folder / f".a.prom.{os.getpid()}.tmp").symlink_to(victim)
    write(folder / "a.prom", b"metrics\n")
    assert victim.read_text() == "precious\n"
    assert (folder / "a.prom").read_bytes() == b"metrics\n"


def test_a_symlinked_directory_is_refused(folder: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(folder)
    with pytest.raises(OutputError, match=r"link: cannot open the directory: is a symbolic link: refusing to follow it$"):
        write(link / "a.prom", b"x")
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o1777])
def test_a_directory_others_can_write_is_refused(folder: Path, mode: int) -> None:
    os.chmod(folder, mode)
    with pytest.raises(OutputError) as caught:
        write(folder / "a.prom", b"x")
    assert str(caught.value) == (
        f"{folder}: writable by group or others (mode {mode:04o}): refusing to write there"
    )
    assert list(folder.iterdir()) == []


def test_a_directory_owned_by_another_user_is_refused(folder: Path) -> None:
    os.chown(folder, 1234, 1234)
    with pytest.raises(OutputError, match=r"owned by uid 1234, not by root: refusing to write there$"):
        write(folder / "a.prom", b"x")


def test_a_missing_directory_and_a_file_for_a_directory_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"nothing: cannot open the directory: No such file or directory$"):
        write(tmp_path / "nothing" / "a.prom", b"x")
    (tmp_path / "plain").write_text("")
    with pytest.raises(OutputError, match=r"plain: cannot open the directory: not a directory$"):
        write(tmp_path / "plain" / "a.prom", b"x")


def test_a_fifo_at_the_name_is_refused_without_blocking(folder: Path) -> None:
    os.mkfifo(folder / "trace")
    with pytest.raises(OutputError, match=r"not a regular file: refusing to replace it$"):
        write(folder / "trace", b"x", keep=True)


def test_check_target_writes_nothing(folder: Path) -> None:
    check_target(str(folder / "a.prom"))
    assert list(folder.iterdir()) == []
    os.chmod(folder, 0o777)
    with pytest.raises(OutputError):
        check_target(str(folder / "a.prom"))
