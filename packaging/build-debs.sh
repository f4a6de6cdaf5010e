#!/usr/bin/env bash
# Build the Debian packages from the checkout, offline, with dpkg-deb and a staged tree:
#   shrinkd_VERSION_all.deb         the daemon (Python package, /usr/bin/shrinkd, systemd unit,
#                                   /etc/shrinkd/shrinkd.yaml as a conffile, /etc/shrinkd/conf.d/)
#   shrinkmem-dkms_VERSION_all.deb  the kernel module's sources under /usr/src for DKMS
# Usage: packaging/build-debs.sh [OUTDIR [PACKAGE...]]
#   OUTDIR defaults to .vm/debs, PACKAGE to both; prints the path of each package built.
# Only files tracked by git are packaged, so build outputs in the tree never end up in a package.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=${1:-.vm/debs}
[ "$#" -gt 0 ] && shift
packages=("$@")
[ "${#packages[@]}" -gt 0 ] || packages=(shrinkd shrinkmem-dkms)
mkdir -p "$out"
out=$(cd "$out" && pwd)

die() { echo "build-debs: $*" >&2; exit 1; }
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (Debian's dpkg package)"

# Files of the checkout under a directory: tracked ones when this is a git checkout.
files_under() {
    if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$repo" ls-files --cached -- "$1"
    else
        find "$1" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' | sort
    fi
}

# Debian packages for pyproject.toml's run-time dependencies: the package depends on
# exactly what the Python package declares.
debian_depends() {
    /usr/bin/python3 - "$repo/pyproject.toml" <<'PY'
import re, sys, tomllib
debian = {"psutil": "python3-psutil", "pyudev": "python3-pyudev", "systemd-python": "python3-systemd",
          "pyyaml": "python3-yaml"}
with open(sys.argv[1], "rb") as handle:
    project = tomllib.load(handle)["project"]
names = []
for requirement in project.get("dependencies", []):
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower()
    if name not in debian:
        sys.exit(f"build-debs: pyproject.toml: no Debian package known for '{name}' (add it to build-debs.sh)")
    names.append(debian[name])
low = project.get("requires-python", ">=3").lstrip(">=")
print(", ".join([f"python3 (>= {low})"] + names))
PY
}

version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' shrinkd/__init__.py)
[ -n "$version" ] || die "shrinkd/__init__.py: no __version__ = \"...\" line"
maintainer="shrinkd maintainers <shrinkd@localhost>"
wanted() { [[ " ${packages[*]} " == *" $1 "* ]]; }
for package in "${packages[@]}"; do
    case "$package" in
        shrinkd) needs=(config/shrinkd.yaml packaging/systemd/shrinkd.service packaging/udev/60-shrinkd.rules README.md) ;;
        shrinkmem-dkms) needs=(kmod/dkms.conf) ;;
        *) die "unknown package '$package' (known: shrinkd shrinkmem-dkms)" ;;
    esac
    for needed in "${needs[@]}"; do
        [ -f "$needed" ] || die "$needed: missing (needed in the $package package)"
    done
done

stage=$(mktemp -d "${TMPDIR:-/tmp}/build-debs.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# Fixed modes whatever the checkout's umask; owner root:root comes from --root-owner-group.
finish_tree() {
    find "$1" -type d -exec chmod 0755 {} +
    find "$1" -type f ! -path '*/DEBIAN/*' -exec chmod 0644 {} +
}

installed_size() { du -sk --exclude=DEBIAN "$1" | cut -f1; }

copyright() {
    cat <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: shrinkd

Files: *
License: GPL-2.0-only
 On Debian systems the full text of the GNU General Public License version 2
 is in /usr/share/common-licenses/GPL-2.
EOF
}

changelog() {  # $1 = package name
    cat <<EOF
$1 ($version) unstable; urgency=medium

  * Built from the shrinkd source tree.

 -- $maintainer  $(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}")
EOF
}

docs() {  # $1 = staged root, $2 = package name
    local doc="$1/usr/share/doc/$2"
    mkdir -p "$doc"
    copyright > "$doc/copyright"
    changelog "$2" | gzip -9n > "$doc/changelog.gz"
}

build_shrinkd() {
depends=$(debian_depends) || exit 1
root="$stage/shrinkd"
pydir="$root/usr/lib/python3/dist-packages"
mkdir -p "$root/DEBIAN" "$pydir" "$root/usr/bin" "$root/lib/systemd/system" "$root/lib/udev/rules.d" \
    "$root/etc/shrinkd/conf.d" "$root/usr/share/doc/shrinkd"
while IFS= read -r file; do
    case "$file" in *.py) ;; *) continue ;; esac
    mkdir -p "$pydir/$(dirname "$file")"
    cp "$file" "$pydir/$file"
done < <(files_under shrinkd)
[ -f "$pydir/shrinkd/cli.py" ] || die "shrinkd/cli.py: not found among the packaged files"
cat > "$root/usr/bin/shrinkd" <<'EOF'
#!/usr/bin/python3
import sys

from shrinkd.cli import main

sys.exit(main())
EOF
cp packaging/systemd/shrinkd.service "$root/lib/systemd/system/shrinkd.service"
cp packaging/udev/60-shrinkd.rules "$root/lib/udev/rules.d/60-shrinkd.rules"
cp config/shrinkd.yaml "$root/etc/shrinkd/shrinkd.yaml"
cp README.md "$root/usr/share/doc/shrinkd/README.md"
[ -f docs/benchmarks.md ] && cp docs/benchmarks.md "$root/usr/share/doc/shrinkd/benchmarks.md"
docs "$root" shrinkd
finish_tree "$root"
chmod 0755 "$root/usr/bin/shrinkd"

echo "/etc/shrinkd/shrinkd.yaml" > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/control" <<EOF
Package: shrinkd
Version: $version
Architecture: all
Maintainer: $maintainer
Installed-Size: $(installed_size "$root")
Depends: $depends
Suggests: shrinkmem-dkms
Section: admin
Priority: optional
Description: keep memory usable on small devices: compact and reclaim before allocations fail
 shrinkd watches per-zone memory fragmentation exactly as the kernel computes it
 (from /proc/buddyinfo, /proc/zoneinfo, /proc/vmstat and PSI) and, when thresholds
 from /etc/shrinkd/shrinkd.yaml are crossed, runs the cheapest action that works:
 compaction first, reclaim (cgroup v2 memory.reclaim, per-node reclaim, or the
 shrinkmem module) only for what compaction cannot reach. Each event is logged to
 the journal with structured fields.
EOF
# Maintainer scripts: byte-compile like dh_python3, enable and start like dh_installsystemd.
cat > "$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if command -v py3compile >/dev/null 2>&1; then
    py3compile -p shrinkd
fi
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ]; then
    if deb-systemd-helper --quiet was-enabled shrinkd.service; then
        deb-systemd-helper enable shrinkd.service >/dev/null || true
    else
        deb-systemd-helper update-state shrinkd.service >/dev/null || true
    fi
    if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        if [ -n "$2" ]; then
            deb-systemd-invoke try-restart shrinkd.service >/dev/null || true
        else
            deb-systemd-invoke start shrinkd.service >/dev/null || true
        fi
    fi
fi
exit 0
EOF
cat > "$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    deb-systemd-invoke stop shrinkd.service >/dev/null || true
fi
if command -v py3clean >/dev/null 2>&1; then
    py3clean -p shrinkd
else
    dpkg -L shrinkd | sed -n 's|\.py$|.pyc|p' | xargs -r rm -f
    find /usr/lib/python3/dist-packages/shrinkd -type d -name __pycache__ -empty -delete 2>/dev/null || true
fi
exit 0
EOF
cat > "$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = "remove" ] && [ -x /usr/bin/deb-systemd-helper ]; then
    deb-systemd-helper mask shrinkd.service >/dev/null || true
fi
if [ "$1" = "purge" ] && [ -x /usr/bin/deb-systemd-helper ]; then
    deb-systemd-helper purge shrinkd.service >/dev/null || true
    deb-systemd-helper unmask shrinkd.service >/dev/null || true
fi
exit 0
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/shrinkd_${version}_all.deb" >/dev/null
echo "$out/shrinkd_${version}_all.deb"
}

build_shrinkmem_dkms() {
kversion=$(sed -n 's/^PACKAGE_VERSION="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' kmod/dkms.conf)
kname=$(sed -n 's/^PACKAGE_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' kmod/dkms.conf)
[ -n "$kversion" ] || die "kmod/dkms.conf: no PACKAGE_VERSION"
[ "$kname" = shrinkmem ] || die "kmod/dkms.conf: PACKAGE_NAME is '$kname', expected shrinkmem"
root="$stage/shrinkmem-dkms"
src="$root/usr/src/shrinkmem-$kversion"
mkdir -p "$root/DEBIAN" "$src"
while IFS= read -r file; do
    rel=${file#kmod/}
    mkdir -p "$src/$(dirname "$rel")"
    cp "$file" "$src/$rel"
done < <(files_under kmod)
[ -f "$src/shrinkmem.c" ] || die "kmod/shrinkmem.c: not found among the packaged files"
docs "$root" shrinkmem-dkms
finish_tree "$root"
cat > "$root/DEBIAN/control" <<EOF
Package: shrinkmem-dkms
Version: $kversion
Architecture: all
Maintainer: $maintainer
Installed-Size: $(installed_size "$root")
Depends: dkms (>= 2.1.0.0)
Recommends: shrinkd
Section: kernel
Priority: optional
Description: shrinkmem kernel module (DKMS sources): /dev/shrinkmem reclaims memory on request
 The shrinkmem module adds /dev/shrinkmem, through which root can ask the kernel
 to reclaim a number of pages with shrink_all_memory(). shrinkd uses it as one of
 its reclaim backends. This package builds the module for the installed kernels
 with DKMS.
EOF
# Like dh_dkms: add, build and install on configure; remove all versions on remove.
cat > "$root/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
if [ "\$1" = "configure" ]; then
    /usr/lib/dkms/common.postinst shrinkmem $kversion "" "" "\$2"
fi
exit 0
EOF
cat > "$root/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
if [ "\$1" = "remove" ] || [ "\$1" = "upgrade" ] || [ "\$1" = "deconfigure" ]; then
    if [ "\$(dkms status -m shrinkmem -v $kversion)" ]; then
        dkms remove -m shrinkmem -v $kversion --all
    fi
fi
exit 0
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/shrinkmem-dkms_${kversion}_all.deb" >/dev/null
echo "$out/shrinkmem-dkms_${kversion}_all.deb"
}

if wanted shrinkd; then build_shrinkd; fi
if wanted shrinkmem-dkms; then build_shrinkmem_dkms; fi
