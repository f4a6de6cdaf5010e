// SPDX-License-Identifier: GPL-2.0
/*
 * shrinkd_allocfail: a test module that asks the page allocator for a block on demand.
 *
 *   echo ORDER > /sys/module/shrinkd_allocfail/parameters/allocate
 *
 * allocates 2^ORDER pages with __GFP_KSWAPD_RECLAIM only (GFP_NOWAIT as 6.1 defines it:
 * no direct reclaim, no compaction, so it fails at once when no free block of that order
 * is left) and frees them again. A failure is reported by the kernel as a `page allocation
 * failure` (what shrinkd watches for in /dev/kmsg), and the write fails with ENOMEM. Newer
 * kernels (6.12.117 in Debian 12 among them) add __GFP_NOWARN to GFP_NOWAIT, which would
 * silence the report. Used by shrinkd's VM tests and bench/reaction.py only.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

#define ALLOCFAIL_MAX_ORDER 10

static int allocfail_set(const char *val, const struct kernel_param *kp)
{
	unsigned int order;
	struct page *page;
	int ret;

	ret = kstrtouint(val, 0, &order);
	if (ret)
		return ret;
	if (order > ALLOCFAIL_MAX_ORDER)
		return -EINVAL;
	page = alloc_pages(__GFP_KSWAPD_RECLAIM, order);
	if (!page)
		return -ENOMEM;
	__free_pages(page, order);
	return 0;
}

static const struct kernel_param_ops allocfail_ops = {
	.set = allocfail_set,
};

module_param_cb(allocate, &allocfail_ops, NULL, 0200);
MODULE_PARM_DESC(allocate, "write an order: allocate and free a block of that order (GFP_NOWAIT)");

MODULE_DESCRIPTION("Page allocations on demand, for shrinkd's tests");
MODULE_LICENSE("GPL");
