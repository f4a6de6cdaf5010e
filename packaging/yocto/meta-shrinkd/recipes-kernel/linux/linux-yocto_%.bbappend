# Optional: export shrink_all_memory() from the kernel, so that shrinkmem calls it
# directly instead of finding it with a kprobe when it loads. Nothing changes unless
# the machine opts in with the override, e.g. in its machine .conf or local.conf:
#   MACHINEOVERRIDES =. "shrinkmem-export:"
# The patch is files/export-shrink_all_memory.patch beside this file (the shrinkd tree's
# kmod/patches one, with its Upstream-Status). A board whose kernel recipe is not
# linux-yocto copies this file under its name into the same folder.
FILESEXTRAPATHS:prepend:shrinkmem-export := "${THISDIR}/files:"
SRC_URI:append:shrinkmem-export = " file://export-shrink_all_memory.patch"
