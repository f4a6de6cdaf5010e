# The top of the shrinkd source tree this external tree is part of (packaging/buildroot):
# the packages build from it (site method local).
SHRINKD_TOPDIR = $(realpath $(BR2_EXTERNAL_SHRINKD_PATH)/../..)
# What the packages' rsync of the tree leaves out: virtualenvs, test scratch, caches.
SHRINKD_TOPDIR_RSYNC_EXCLUSIONS = \
	--exclude .venv --exclude .vm --exclude .mypy_cache --exclude .ruff_cache \
	--exclude .pytest_cache --exclude __pycache__ --exclude '*.egg-info' --exclude build --exclude dist

include $(sort $(wildcard $(BR2_EXTERNAL_SHRINKD_PATH)/package/*/*.mk))
