#!/usr/bin/env bash
# Install everything shrinkd needs to run and to be tested, on Debian 12 (bookworm):
# Debian packages (QEMU, Debian's 6.1 and backports' 6.12 kernels and headers, tools)
# and a virtualenv in .venv with shrinkd and its Python dependencies.
# Idempotent: a second run installs nothing new. Usage: scripts/setup.sh [--runtime-only]
set -euo pipefail
cd "$(dirname "$0")/.."

runtime_only=0
[ "${1:-}" = "--runtime-only" ] && runtime_only=1

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

# Packages the daemon needs at run time (PyYAML comes from PyPI into .venv).
runtime_pkgs=(python3-venv)
# Packages the tests need: QEMU and Debian kernels to boot, headers to build the
# module against, busybox for virtme-ng's guest init, checkpatch from linux-source,
# systemd for journald and systemd-analyze in the guest.
test_pkgs=(qemu-system-x86 linux-image-amd64 linux-headers-amd64 busybox-static kmod
           util-linux systemd udev make linux-source-6.1 earlyoom nohang e2fsprogs
           python3-yaml dkms gcc g++)
# Test kernels built from linux-source-6.1 (tests/testkernels.py): kCFI needs clang-16
# and its LLVM tools; Kbuild needs flex, bison, bc, and libelf for objtool.
test_pkgs+=(clang-16 lld-16 llvm-16 flex bison bc libelf-dev)
# The Debian source package's build dependencies (dpkg-buildpackage) and lintian.
test_pkgs+=(debhelper dh-python pybuild-plugin-pyproject dh-dkms python3-all python3-setuptools
            dpkg-dev lintian man-db)
# The board targets (tests/vm.py, tests/rootfs.py): QEMU for ARM, mmdebstrap to build each
# architecture's Debian root file system (foreign ones through qemu-user-static and
# binfmt_misc, which mmdebstrap checks with arch-test), qemu-img for the guests'
# copy-on-write disks, cpio and xz for their initramfs.
test_pkgs+=(qemu-system-arm qemu-utils mmdebstrap arch-test qemu-user-static binfmt-support cpio xz-utils)
# systemd-python (shrinkd history) builds against libsystemd.
test_pkgs+=(libsystemd-dev pkg-config python3-dev)
# promtool checks and unit-tests the example alerting rules (contrib/prometheus/).
test_pkgs+=(prometheus)
# bookworm-backports' 6.12 kernel: an IBT-enabled build the module must also handle.
bpo_pkgs=(linux-image-6.12-amd64 linux-headers-6.12-amd64)

missing() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
    done
}

pkgs=("${runtime_pkgs[@]}")
[ "$runtime_only" -eq 1 ] || pkgs+=("${test_pkgs[@]}")
need=$(missing "${pkgs[@]}")
need_bpo=""
[ "$runtime_only" -eq 1 ] || need_bpo=$(missing "${bpo_pkgs[@]}")

if [ -n "$need_bpo" ] && ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "setup: adding bookworm-backports to apt's sources"
    $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

if [ -n "$need$need_bpo" ]; then
    echo "setup: installing Debian packages:" $need $need_bpo
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    # shellcheck disable=SC2086
    [ -z "$need" ] || $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $need >/dev/null
    # shellcheck disable=SC2086
    [ -z "$need_bpo" ] || $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends -t bookworm-backports $need_bpo >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
extra=".[test]"
[ "$runtime_only" -eq 1 ] && extra="."
stamp=".venv/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)-$runtime_only"
if [ ! -e "$stamp" ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e "$extra"
    touch "$stamp"
fi

# PyPI tools the packaging tests run: oelint-adv lints the Yocto layer, bitbake-setup
# carries BitBake's own parser (the bb library), kconfiglib reads the Buildroot tree's
# Config.in files (openembedded-core and Buildroot themselves are on neither PyPI nor Debian).
tools="oelint-adv==9.11.2 bitbake-setup==2.19.0 kconfiglib==14.1.0"
tools_stamp=".venv/.tools-$(echo "$tools" | sha1sum | cut -c1-12)"
if [ "$runtime_only" -eq 0 ] && [ ! -e "$tools_stamp" ]; then
    # shellcheck disable=SC2086
    .venv/bin/pip install -q $tools
    touch "$tools_stamp"
fi
