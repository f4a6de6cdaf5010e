################################################################################
#
# shrinkmem
#
################################################################################

SHRINKMEM_VERSION = 1.2.0
SHRINKMEM_SITE = $(SHRINKD_TOPDIR)
SHRINKMEM_SITE_METHOD = local
SHRINKMEM_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = $(SHRINKD_TOPDIR_RSYNC_EXCLUSIONS)
SHRINKMEM_LICENSE = GPL-2.0
SHRINKMEM_LICENSE_FILES = COPYING
# Built by the kernel-module infrastructure with the kernel's own Kbuild.
SHRINKMEM_MODULE_SUBDIRS = kmod

# shrink_all_memory() is built only with CONFIG_HIBERNATION (which depends on CONFIG_SWAP);
# the module finds it with a kprobe (CONFIG_KPROBES, CONFIG_KALLSYMS) unless the kernel
# exports it (kmod/patches).
define SHRINKMEM_LINUX_CONFIG_FIXUPS
	$(call KCONFIG_ENABLE_OPT,CONFIG_SWAP)
	$(call KCONFIG_ENABLE_OPT,CONFIG_HIBERNATION)
	$(call KCONFIG_ENABLE_OPT,CONFIG_KPROBES)
	$(call KCONFIG_ENABLE_OPT,CONFIG_KALLSYMS)
endef

# Not loaded at boot by systemd: on a kernel it refuses (no CONFIG_HIBERNATION, kCFI,
# enforced IBT) that would fail at every boot. shrinkd loads it as it starts.

$(eval $(kernel-module))
$(eval $(generic-package))
