# nooelint: oelint.var.bbclassextend
# A kernel module has no native or nativesdk variant.
SUMMARY = "shrinkmem kernel module: /dev/shrinkmem reclaims memory on request"
DESCRIPTION = "The shrinkmem module adds /dev/shrinkmem, through which root asks the \
               kernel to reclaim a number of pages with shrink_all_memory(). shrinkd \
               uses it as one of its reclaim backends. It is loaded as shrinkd starts."
SECTION = "kernel/modules"
LICENSE = "GPL-2.0-only"
LIC_FILES_CHKSUM = "file://shrinkmem.c;beginline=1;endline=1;md5=50d2ba0afecd20f74c12a4bdbcfcfe61"
CVE_PRODUCT = "shrinkmem"

inherit module

# The project's git repository at SRCREV (shrinkd-source.inc), the module's folder of it as S.
# The Makefile builds against KERNEL_SRC (module.bbclass passes STAGING_KERNEL_DIR) and
# installs with modules_install. To build a working tree instead: EXTERNALSRC (the layer's README).
require recipes-support/shrinkd/shrinkd-source.inc
# The unpack folder in both series: UNPACKDIR from styhead on, WORKDIR in scarthgap, which
# has no UNPACKDIR (an assignment to UNPACKDIR here would override the newer series' own).
SHRINKD_UNPACKDIR = "${@d.getVar('UNPACKDIR') or d.getVar('WORKDIR')}"
S = "${SHRINKD_UNPACKDIR}/${BP}/kmod"

# The architectures kmod/Kbuild's kprobe path is proven on; elsewhere the build would stop.
COMPATIBLE_HOST = "(x86_64|aarch64|arm).*-linux"

# shrinkmem(4), the device's manual page, beside the module's folder (in ${PN}-doc).
do_install:append() {
    install -d ${D}${mandir}/man4
    install -m 0644 ${S}/../man/shrinkmem.4 ${D}${mandir}/man4/shrinkmem.4
}

RRECOMMENDS:${PN} += "shrinkd"

# Not KERNEL_MODULE_AUTOLOAD: on a kernel without CONFIG_HIBERNATION, with kCFI or with
# enforced IBT the module refuses to load, and the boot-time load would then fail at every
# boot. shrinkd loads it as it starts (its unit wants modprobe@shrinkmem.service), where a
# refusal is one line in the log.
