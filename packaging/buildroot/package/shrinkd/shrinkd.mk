################################################################################
#
# shrinkd
#
################################################################################

SHRINKD_VERSION = 0.1.0
SHRINKD_SITE = $(SHRINKD_TOPDIR)
SHRINKD_SITE_METHOD = local
SHRINKD_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = $(SHRINKD_TOPDIR_RSYNC_EXCLUSIONS)
SHRINKD_LICENSE = GPL-2.0
SHRINKD_LICENSE_FILES = COPYING
# A PEP 517 build (python -m build) with setuptools as the backend.
SHRINKD_SETUP_TYPE = setuptools

# The project's launcher: the one the wheel installer writes also imports
# re, which the running daemon otherwise never loads.
define SHRINKD_INSTALL_CONFIG_AND_LAUNCHER
	$(INSTALL) -D -m 0755 $(@D)/packaging/bin/shrinkd \
		$(TARGET_DIR)/usr/bin/shrinkd
	$(INSTALL) -D -m 0644 $(@D)/config/shrinkd.yaml \
		$(TARGET_DIR)/etc/shrinkd/shrinkd.yaml
	mkdir -p $(TARGET_DIR)/etc/shrinkd/conf.d
	$(INSTALL) -D -m 0644 $(@D)/packaging/udev/60-shrinkd.rules \
		$(TARGET_DIR)/usr/lib/udev/rules.d/60-shrinkd.rules
endef
SHRINKD_POST_INSTALL_TARGET_HOOKS += SHRINKD_INSTALL_CONFIG_AND_LAUNCHER

# Bash completion, as Buildroot's packages install it: only with bash-completion,
# which loads completions/<command> on demand (target-finalize removes
# /usr/share/bash-completion without bash). No manual pages: target-finalize
# removes /usr/share/man and /usr/share/doc in every build.
ifeq ($(BR2_PACKAGE_BASH_COMPLETION),y)
define SHRINKD_INSTALL_BASH_COMPLETION
	$(INSTALL) -D -m 0644 $(@D)/contrib/completion/shrinkd.bash \
		$(TARGET_DIR)/usr/share/bash-completion/completions/shrinkd
endef
SHRINKD_POST_INSTALL_TARGET_HOOKS += SHRINKD_INSTALL_BASH_COMPLETION
endif

define SHRINKD_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/packaging/systemd/shrinkd.service \
		$(TARGET_DIR)/usr/lib/systemd/system/shrinkd.service
endef

# BusyBox init and sysvinit: early, as Buildroot's earlyoom (S02), after syslogd (S01).
define SHRINKD_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(@D)/packaging/init.d/shrinkd \
		$(TARGET_DIR)/etc/init.d/S02shrinkd
endef

$(eval $(python-package))
