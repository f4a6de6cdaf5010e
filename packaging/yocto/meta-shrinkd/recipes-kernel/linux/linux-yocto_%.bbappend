# Optional: export shrink_all_memory() from the kernel, so that shrinkmem calls it
# directly instead of finding it with a kprobe when it loads. Nothing changes unless
# the machine opts in with the override, e.g. in its machine .conf or local.conf:
#   MACHINEOVERRIDES =. "shrinkmem-export:"
# A board whose kernel recipe is not linux-yocto copies this file under its name
# (into the same folder: the patch is found from it, in the shrinkd tree's kmod/patches).
FILESEXTRAPATHS:prepend:shrinkmem-export := "${THISDIR}/../../../../../kmod/patches:"
SRC_URI:append:shrinkmem-export = " file://export-shrink_all_memory.patch"
