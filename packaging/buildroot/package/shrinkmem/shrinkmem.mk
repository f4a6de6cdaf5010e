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

define SHRINKMEM_INSTALL_INIT_SYSTEMD
	echo shrinkmem > $(@D)/shrinkmem.conf
	$(INSTALL) -D -m 0644 $(@D)/shrinkmem.conf \
		$(TARGET_DIR)/usr/lib/modules-load.d/shrinkmem.conf
endef

$(eval $(kernel-module))
$(eval $(generic-package))
