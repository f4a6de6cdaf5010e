# nooelint: oelint.var.bbclassextend
# A daemon for the target has no native or nativesdk variant.
SUMMARY = "Memory fragmentation watchdog: compaction and reclaim before allocations fail"
DESCRIPTION = "shrinkd watches per-zone memory fragmentation exactly as the kernel \
               computes it (/proc/buddyinfo, /proc/zoneinfo, /proc/vmstat, PSI) and, \
               when thresholds from /etc/shrinkd/shrinkd.yaml are crossed, runs the \
               cheapest action that works: compaction first, reclaim only for what \
               compaction cannot reach. Events go to the journal."
SECTION = "admin"
LICENSE = "GPL-2.0-only"
LIC_FILES_CHKSUM = "file://COPYING;md5=b234ee4d69f5fce4486a80fdaf4a4263"
CVE_PRODUCT = "shrinkd"

inherit python_setuptools_build_meta systemd update-rc.d bash-completion

# The project's git repository at SRCREV (shrinkd-source.inc); S is the unpacked tree, as
# bitbake.conf sets it. To build a working tree instead: EXTERNALSRC (the layer's README).
require shrinkd-source.inc

do_install:append() {
    # The project's launcher: the one the wheel installer writes also imports re,
    # which the running daemon otherwise never loads.
    install -m 0755 ${S}/packaging/bin/shrinkd ${D}${bindir}/shrinkd
    install -d ${D}${sysconfdir}/shrinkd/conf.d
    install -m 0644 ${S}/config/shrinkd.yaml ${D}${sysconfdir}/shrinkd/shrinkd.yaml
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${S}/packaging/systemd/shrinkd.service ${D}${systemd_system_unitdir}/shrinkd.service
    # sysvinit (update-rc.d.bbclass registers it; with systemd as well, the unit is used)
    if ${@bb.utils.contains('DISTRO_FEATURES', 'sysvinit', 'true', 'false', d)}; then
        install -d ${D}${sysconfdir}/init.d
        install -m 0755 ${S}/packaging/init.d/shrinkd ${D}${sysconfdir}/init.d/shrinkd
    fi
    install -d ${D}${nonarch_base_libdir}/udev/rules.d
    install -m 0644 ${S}/packaging/udev/60-shrinkd.rules ${D}${nonarch_base_libdir}/udev/rules.d/60-shrinkd.rules
    # The manual pages (in ${PN}-doc) and the docs with their pictures beside them, so that
    # the pages' relative image links hold (docs/*.png: every picture there is).
    install -d ${D}${mandir}/man8 ${D}${mandir}/man5 ${D}${docdir}/${BPN}
    install -m 0644 ${S}/man/shrinkd.8 ${D}${mandir}/man8/shrinkd.8
    install -m 0644 ${S}/man/shrinkd.yaml.5 ${D}${mandir}/man5/shrinkd.yaml.5
    install -m 0644 ${S}/README.md ${S}/docs/*.md ${S}/docs/*.png ${D}${docdir}/${BPN}/
    # bash-completion loads completions/<command> on demand; bash-completion.bbclass puts
    # it in ${PN}-bash-completion, which depends on bash-completion.
    install -d ${D}${datadir}/bash-completion/completions
    install -m 0644 ${S}/contrib/completion/shrinkd.bash ${D}${datadir}/bash-completion/completions/shrinkd
}

SYSTEMD_SERVICE:${PN} = "shrinkd.service"
# sysvinit: after busybox's syslog (start 20), which it logs to, and stopped before it (stop 20);
# udev and the file systems are up in rcS before.
INITSCRIPT_NAME = "shrinkd"
INITSCRIPT_PARAMS = "start 25 2 3 4 5 . stop 15 0 1 6 ."

CONFFILES:${PN} = "${sysconfdir}/shrinkd/shrinkd.yaml"

# What shrinkd imports, by the python3 package that ships it (OE-core's
# python3-manifest.json): argparse, dataclasses, fcntl, os, pathlib, platform, select,
# signal, struct, traceback, typing in python3-core; _socket in python3-io; json in
# python3-json; yaml in python3-pyyaml; gzip (shrinkd doctor reads /proc/config.gz) in
# python3-compression; datetime (shrinkd history) in python3-datetime. The tools' optional
# libraries are left out: add meta-python's python3-pyudev (doctor), python3-systemd
# (history) or python3-matplotlib (plot) to an image that runs them on the board.
RDEPENDS:${PN} = "python3-compression python3-core python3-datetime python3-io python3-json python3-pyyaml"
RRECOMMENDS:${PN} = "kernel-module-shrinkmem"
