"""The Python client's view of the shrinkmem ABI (shrinkd/shrinkmem.py) against kmod/uapi/shrinkmem.h.

Two independent checks: the header's text is parsed here and the client's struct
formats, field order and ioctl numbers rebuilt from it; and a C program compiled
against the header prints sizeof, offsetof, the ioctl numbers and the constants, as
the compiler sees them, for the host and for 32-bit x86 (the compat path). The
client's error handling is checked with real system calls on ordinary files.
"""

from __future__ import annotations

import errno
import os
import re
import struct
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from shrinkd import shrinkmem
from shrinkd.errors import ActionError, MissingInputError

REPO = Path(__file__).resolve().parent.parent
HEADER = REPO / "kmod" / "uapi" / "shrinkmem.h"
STRUCT_CODES = {"__u64": "Q", "__u32": "I", "__u16": "H", "__u8": "B", "__s64": "q", "__s32": "i"}
RESULT_CONSTANTS = ("RESULT_INTERRUPTED", "RESULT_FROZEN", "RESULT_SHORT")
DIRECTIONS = {"_IO": (), "_IOR": ("read",), "_IOW": ("write",), "_IOWR": ("read", "write")}


def header_text() -> str:
    return HEADER.read_text()


def header_defines() -> Dict[str, str]:
    return dict(re.findall(r"^#define\s+(SHRINKMEM_\w+)\s+(.+?)\s*(?:/\*.*)?$", header_text(), re.M))


def header_structs() -> Dict[str, List[Tuple[str, str]]]:
    """struct name -> [(type, field)], in declaration order."""
    structs: Dict[str, List[Tuple[str, str]]] = {}
    for name, body in re.findall(r"^struct (\w+) \{\n(.*?)^\};", header_text(), re.M | re.S):
        fields = re.findall(r"^\s*(__[us]\d+)\s+(\w+);", body, re.M)
        assert fields, f"struct {name}: no fields parsed"
        assert len(fields) == len([line for line in body.splitlines() if line.strip()]), f"struct {name}: {body}"
        structs[name] = fields
    return structs


def parsed_ioctls() -> Dict[str, Tuple[str, int, int, str]]:
    """SHRINKMEM_IOC_x -> (macro, type code, nr, struct name), from the header's #defines."""
    defines = header_defines()
    magic = re.fullmatch(r"'(.)'", defines["SHRINKMEM_IOC_MAGIC"])
    assert magic, defines["SHRINKMEM_IOC_MAGIC"]
    out = {}
    for name, value in defines.items():
        match = re.fullmatch(r"(_IO\w*)\((SHRINKMEM_IOC_MAGIC), (0x[0-9a-fA-F]+|\d+), struct (\w+)\)", value)
        if match:
            out[name] = (match.group(1), ord(magic.group(1)), int(match.group(3), 0), match.group(4))
    return out


def format_of(fields: List[Tuple[str, str]]) -> str:
    return "=" + "".join(STRUCT_CODES[kind] for kind, _ in fields)


# ---------------------------------------------------------------- the header's text


def test_struct_layouts_match_the_header_text() -> None:
    structs = header_structs()
    assert set(structs) == {"shrinkmem_reclaim", "shrinkmem_info"}
    reclaim, info = structs["shrinkmem_reclaim"], structs["shrinkmem_info"]
    assert format_of(reclaim) == shrinkmem.RECLAIM_STRUCT.format
    assert tuple(name for _, name in reclaim) == shrinkmem.RECLAIM_FIELDS
    assert format_of(info) == shrinkmem.INFO_STRUCT.format
    assert tuple(name for _, name in info) == shrinkmem.INFO_FIELDS


def test_structs_have_no_implicit_padding() -> None:
    """Each field is naturally aligned and the size a multiple of 8: one layout on every ABI."""
    for name, fields in header_structs().items():
        offset = 0
        for kind, field in fields:
            size = struct.calcsize(STRUCT_CODES[kind])
            assert offset % size == 0, f"struct {name}.{field} at offset {offset}"
            offset += size
        assert offset % 8 == 0, f"struct {name} is {offset} bytes"


def test_ioctl_numbers_match_the_header_text() -> None:
    ioctls = parsed_ioctls()
    assert set(ioctls) == {"SHRINKMEM_IOC_RECLAIM", "SHRINKMEM_IOC_INFO"}
    sizes = {name: struct.calcsize(format_of(fields)) for name, fields in header_structs().items()}
    numbers = shrinkmem.ioctl_numbers()
    layout = shrinkmem.ioc_layout()
    for name, (macro, type_, nr, struct_name) in ioctls.items():
        direction = 0 if not DIRECTIONS[macro] else sum(getattr(layout, d) for d in DIRECTIONS[macro])
        assert numbers[name] == layout.encode(direction, type_, nr, sizes[struct_name]), name
    assert ioctls["SHRINKMEM_IOC_RECLAIM"][0] == "_IOWR"
    assert (
        numbers["SHRINKMEM_IOC_RECLAIM"],
        numbers["SHRINKMEM_IOC_INFO"],
    ) == (shrinkmem.IOC_RECLAIM, shrinkmem.IOC_INFO)


def test_constants_match_the_header_text() -> None:
    defines = header_defines()
    assert int(defines["SHRINKMEM_ABI_VERSION"]) == shrinkmem.ABI_VERSION
    assert int(defines["SHRINKMEM_METHOD_EXPORT"]) == shrinkmem.METHOD_EXPORT
    assert int(defines["SHRINKMEM_METHOD_KPROBE"]) == shrinkmem.METHOD_KPROBE
    assert defines["SHRINKMEM_IOC_MAGIC"] == repr(chr(shrinkmem.IOC_MAGIC))
    for name in RESULT_CONSTANTS:
        assert int(defines[f"SHRINKMEM_{name}"], 0) == getattr(shrinkmem, name), name


# ---------------------------------------------------------------- the header as the compiler sees it


def c_probe_source() -> str:
    lines = [
        "#include <stddef.h>",
        "#include <stdio.h>",
        '#include "shrinkmem.h"',
        "int main(void)",
        "{",
    ]
    for name, fields in header_structs().items():
        lines.append(f'\tprintf("sizeof {name} %zu\\n", sizeof(struct {name}));')
        for _, field in fields:
            lines.append(f'\tprintf("offsetof {name}.{field} %zu\\n", offsetof(struct {name}, {field}));')
    constants = ["SHRINKMEM_ABI_VERSION", "SHRINKMEM_METHOD_EXPORT", "SHRINKMEM_METHOD_KPROBE", "SHRINKMEM_IOC_MAGIC"]
    constants += [f"SHRINKMEM_{name}" for name in RESULT_CONSTANTS]
    for name in [*parsed_ioctls(), *constants]:
        lines.append(f'\tprintf("value {name} %lu\\n", (unsigned long)({name}));')
    lines += ["\treturn 0;", "}", ""]
    return "\n".join(lines)


def compiled_view(tmp_path: Path) -> Dict[str, int]:
    source = tmp_path / "probe.c"
    source.write_text(c_probe_source())
    binary = tmp_path / "probe"
    subprocess.run(
        ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{HEADER.parent}", "-o", str(binary), str(source)],
        check=True,
        capture_output=True,
        text=True,
    )
    output = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout
    return {key: int(value) for key, value in (line.rsplit(" ", 1) for line in output.splitlines())}


def test_compiled_header_matches_the_client(tmp_path: Path) -> None:
    seen = compiled_view(tmp_path)
    for name, layout, fields in (
        ("shrinkmem_reclaim", shrinkmem.RECLAIM_STRUCT, shrinkmem.RECLAIM_FIELDS),
        ("shrinkmem_info", shrinkmem.INFO_STRUCT, shrinkmem.INFO_FIELDS),
    ):
        assert seen[f"sizeof {name}"] == layout.size
        offset = 0
        for field, code in zip(fields, layout.format.lstrip("=")):
            assert seen[f"offsetof {name}.{field}"] == offset, f"{name}.{field}"
            offset += struct.calcsize(code)
    assert seen["value SHRINKMEM_IOC_RECLAIM"] == shrinkmem.IOC_RECLAIM
    assert seen["value SHRINKMEM_IOC_INFO"] == shrinkmem.IOC_INFO
    assert seen["value SHRINKMEM_ABI_VERSION"] == shrinkmem.ABI_VERSION
    assert seen["value SHRINKMEM_METHOD_EXPORT"] == shrinkmem.METHOD_EXPORT
    assert seen["value SHRINKMEM_METHOD_KPROBE"] == shrinkmem.METHOD_KPROBE
    assert seen["value SHRINKMEM_IOC_MAGIC"] == shrinkmem.IOC_MAGIC
    for name in RESULT_CONSTANTS:
        assert seen[f"value SHRINKMEM_{name}"] == getattr(shrinkmem, name), name


def test_header_has_one_layout_for_32_bit_callers(tmp_path: Path) -> None:
    """compat_ptr_ioctl needs identical layouts: i386 aligns __u64 to 4, so check it compiled with -m32."""
    asserts = ['#include "shrinkmem.h"']
    for name, layout, fields in (
        ("shrinkmem_reclaim", shrinkmem.RECLAIM_STRUCT, shrinkmem.RECLAIM_FIELDS),
        ("shrinkmem_info", shrinkmem.INFO_STRUCT, shrinkmem.INFO_FIELDS),
    ):
        asserts.append(f'_Static_assert(sizeof(struct {name}) == {layout.size}, "sizeof {name}");')
        offset = 0
        for field, code in zip(fields, layout.format.lstrip("=")):
            asserts.append(f'_Static_assert(__builtin_offsetof(struct {name}, {field}) == {offset}, "{name}.{field}");')
            offset += struct.calcsize(code)
    source = tmp_path / "m32.c"
    source.write_text("\n".join(asserts) + "\n")
    # The kernel's x86 asm/ headers are the same for 32 and 64 bits; no 32-bit libc is needed.
    result = subprocess.run(
        [
            "gcc",
            "-m32",
            "-std=c11",
            "-fsyntax-only",
            "-idirafter",
            "/usr/include/x86_64-linux-gnu",
            f"-I{HEADER.parent}",
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_header_compiles_alone_in_c_and_cplusplus(tmp_path: Path) -> None:
    for compiler, language in (("gcc", "c"), ("g++", "c++")):
        result = subprocess.run(
            [
                compiler,
                "-x",
                language,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-fsyntax-only",
                f"-I{HEADER.parent}",
                "-include",
                "shrinkmem.h",
                "/dev/null",
            ],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"{compiler}: {result.stderr}"


IOC_TABLE = [(d, t, n, s) for d in range(4) for t in (0, 0x59, 0xFF) for n in (0, 1, 0xFF) for s in (0, 24, 0x1FFF)]


def compiled_ioc(tmp_path: Path, defines: List[str]) -> List[int]:
    """_IOC_NONE, _IOC_READ, _IOC_WRITE, _IOC_SIZEBITS, then _IOC() of each row of IOC_TABLE."""
    lines = ["#include <stdio.h>", "#include <asm-generic/ioctl.h>", "int main(void)", "{"]
    for name in ("_IOC_NONE", "_IOC_READ", "_IOC_WRITE", "_IOC_SIZEBITS"):
        lines.append(f'\tprintf("%lu\\n", (unsigned long){name});')
    for d, t, n, s in IOC_TABLE:
        lines.append(f'\tprintf("%lu\\n", (unsigned long)_IOC({d}U, {t}U, {n}U, {s}U));')
    lines += ["\treturn 0;", "}", ""]
    source = tmp_path / "ioc.c"
    source.write_text("\n".join(lines))
    binary = tmp_path / "ioc"
    subprocess.run(["gcc", *defines, "-o", str(binary), str(source)], check=True, capture_output=True, text=True)
    output = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout
    return [int(line) for line in output.split()]


@pytest.mark.parametrize(
    ("machine", "defines"),
    [
        ("x86_64", []),
        ("aarch64", []),
        # arch/powerpc/include/uapi/asm/ioctl.h (mips, sparc and alpha alike): 13 size bits, 3 direction bits.
        ("ppc64le", ["-D_IOC_SIZEBITS=13", "-D_IOC_DIRBITS=3", "-D_IOC_NONE=1U", "-D_IOC_READ=2U", "-D_IOC_WRITE=4U"]),
        ("mips", ["-D_IOC_SIZEBITS=13", "-D_IOC_DIRBITS=3", "-D_IOC_NONE=1U", "-D_IOC_READ=2U", "-D_IOC_WRITE=4U"]),
    ],
)
def test_ioc_encoding_matches_the_kernel_macros(tmp_path: Path, machine: str, defines: List[str]) -> None:
    layout = shrinkmem.ioc_layout(machine)
    compiled = compiled_ioc(tmp_path, defines)
    assert compiled[:4] == [layout.none, layout.read, layout.write, layout.size_bits]
    assert [layout.encode(d, t, n, s) for d, t, n, s in IOC_TABLE] == compiled[4:]


# ---------------------------------------------------------------- the client's errors


def test_missing_device_is_missing_input(tmp_path: Path) -> None:
    path = tmp_path / "shrinkmem"
    with pytest.raises(MissingInputError) as caught:
        shrinkmem.ShrinkMem(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot open: ENOENT") and "module loaded" in message
    assert "\n" not in message
    assert caught.value.exit_code == 4
    assert not shrinkmem.available(path)


def test_unopenable_path_is_an_action_error(tmp_path: Path) -> None:
    with pytest.raises(ActionError, match=r": cannot open: EISDIR \(Is a directory\)$"):
        shrinkmem.ShrinkMem(tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_permission_denied_is_an_action_error(tmp_path: Path) -> None:
    node = tmp_path / "node"
    node.write_text("")
    node.chmod(0o600)
    tmp_path.chmod(0o755)
    code = (
        "import sys\nfrom shrinkd import shrinkmem\nfrom shrinkd.errors import ActionError\n"
        "try:\n    shrinkmem.ShrinkMem(sys.argv[1])\nexcept ActionError as e:\n    print(e)\n"
    )
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            str(REPO / ".venv" / "bin" / "python"),
            "-c",
            code,
            str(node),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.stdout.strip() == f"{node}: cannot open: EACCES (Permission denied)", result.stderr


def test_ioctl_refused_is_a_one_line_action_error(tmp_path: Path) -> None:
    """A regular file has no ioctls: the kernel answers ENOTTY, the client names it."""
    node = tmp_path / "node"
    node.write_bytes(b"")
    assert shrinkmem.available(node)
    with shrinkmem.ShrinkMem(node, check_abi=False) as dev:
        with pytest.raises(ActionError) as caught:
            dev.reclaim(256)
        assert str(caught.value) == (
            f"{node}: SHRINKMEM_IOC_RECLAIM of 256 pages failed: ENOTTY ({os.strerror(errno.ENOTTY)})"
        )
        with pytest.raises(ActionError, match=r"SHRINKMEM_IOC_INFO failed: ENOTTY"):
            dev.info()
    with pytest.raises(ActionError, match="closed"):
        dev.reclaim(1)
    dev.close()


@pytest.mark.parametrize("pages", [-1, 1 << 64, True, 1.5, "10"])
def test_reclaim_rejects_values_the_abi_cannot_carry(tmp_path: Path, pages: object) -> None:
    node = tmp_path / "node"
    node.write_bytes(b"")
    with shrinkmem.ShrinkMem(node, check_abi=False) as dev, pytest.raises(ValueError, match="pages must be"):
        dev.reclaim(pages)  # type: ignore[arg-type]


def test_open_refuses_what_cannot_tell_its_abi_version(tmp_path: Path) -> None:
    """Opening asks the ABI version first; a node that cannot answer is refused in one line, its fd closed.

    (A module that answers with another version is refused in a booted kernel:
    tests/test_kmod_vm.py loads a module built with another SHRINKMEM_ABI_VERSION.)
    """
    node = tmp_path / "node"
    node.write_bytes(b"")
    fds_before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(ActionError) as caught:
        shrinkmem.ShrinkMem(node)
    assert str(caught.value) == (
        f"{node}: cannot ask the shrinkmem module its ABI version (SHRINKMEM_IOC_INFO: ENOTTY "
        f"({os.strerror(errno.ENOTTY)})); this shrinkd needs ABI version {shrinkmem.ABI_VERSION}"
    )
    assert len(os.listdir("/proc/self/fd")) == fds_before
