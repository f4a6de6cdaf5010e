// SPDX-License-Identifier: GPL-2.0
/*
 * shrinkd_allocfail: a test module that makes a high-order allocation fail on demand.
 *
 *   echo ORDER > /sys/module/shrinkd_allocfail/parameters/allocate
 *
 * first takes every free block of that order that the allocator hands out without reclaim,
 * compaction or a warning (__GFP_MOVABLE | __GFP_NOWARN: the free lists and per-cpu lists
 * only, above the zones' watermarks; movable, the type most free blocks have, so that few
 * pageblocks change type on the way), then asks for one more block with __GFP_KSWAPD_RECLAIM only
 * (GFP_NOWAIT as 6.1 defines it: no direct reclaim, no compaction), which fails at once,
 * and gives every block back. The kernel reports the failure as a `page allocation
 * failure` (what shrinkd watches for in /dev/kmsg), and the write fails with ENOMEM; it
 * succeeds only if a block appeared in between. Taking the blocks in the same call leaves
 * no time for kswapd, kcompactd or another task to make one. Newer kernels (6.12.117 in
 * Debian 12 among them) add __GFP_NOWARN to GFP_NOWAIT, which would silence the report.
 * Used by shrinkd's VM tests and bench/reaction.py only.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

#define ALLOCFAIL_MAX_ORDER 10

static int allocfail_set(const char *val, const struct kernel_param *kp)
{
	unsigned int order;
	unsigned long taken = 0;
	struct page *page, *next;
	LIST_HEAD(blocks);
	int ret;

	ret = kstrtouint(val, 0, &order);
	if (ret)
		return ret;
	if (order > ALLOCFAIL_MAX_ORDER)
		return -EINVAL;
	while ((page = alloc_pages(__GFP_MOVABLE | __GFP_NOWARN, order))) {
		list_add(&page->lru, &blocks);
		taken++;
	}
	page = alloc_pages(__GFP_KSWAPD_RECLAIM, order);
	ret = page ? 0 : -ENOMEM;
	if (page)
		__free_pages(page, order);
	list_for_each_entry_safe(page, next, &blocks, lru) {
		list_del(&page->lru);
		__free_pages(page, order);
	}
	pr_info("order %u: took %lu free blocks first, then the allocation %s\n", order, taken,
		ret ? "failed" : "succeeded");
	return ret;
}

static const struct kernel_param_ops allocfail_ops = {
	.set = allocfail_set,
};

module_param_cb(allocate, &allocfail_ops, NULL, 0200);
MODULE_PARM_DESC(allocate, "write an order: take every free block of it, then allocate one more (GFP_NOWAIT)");

MODULE_DESCRIPTION("High-order allocation failures on demand, for shrinkd's tests");
MODULE_LICENSE("GPL");
