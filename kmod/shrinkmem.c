// SPDX-License-Identifier: GPL-2.0
/*
 * shrinkmem: reclaim memory on request through /dev/shrinkmem.
 *
 * The kernel's shrink_all_memory() (mm/vmscan.c, built with
 * CONFIG_HIBERNATION) reclaims a given number of pages from all zones. This
 * module lets a privileged process call it:
 *
 *     echo 100 > /dev/shrinkmem     reclaim about 100 MB
 *     ioctl(fd, SHRINKMEM_IOC_RECLAIM, &req)   the same in pages, with results
 *     cat /dev/shrinkmem            counters and the last call's result
 *
 * The function is called directly when the kernel exports it (see patches/);
 * otherwise its address is found with a kprobe at load time. An indirect call
 * is unsafe on kernels that check indirect branches (x86 IBT enforced by the
 * CPU, kCFI): the module refuses to load there, with one message saying why.
 *
 * shrink_all_memory() checks no signals, so large requests are split into
 * chunks with a fatal-signal check between them.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/freezer.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/ktime.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched/signal.h>
#include <linux/spinlock.h>
#include <linux/swap.h>
#include <linux/uaccess.h>

#ifdef CONFIG_X86_KERNEL_IBT
#include <asm/cpufeature.h>
#endif

#include "uapi/shrinkmem.h"

#define SHRINKMEM_VERSION "1.0.0"

/* Pages per megabyte. */
#define MB_SHIFT (20 - PAGE_SHIFT)

/*
 * Longest text request accepted for parsing. Longer input is EINVAL; a long
 * number that fits here but not in an unsigned long is ERANGE.
 */
#define TEXT_MAX 64

static unsigned long max_mb;
module_param(max_mb, ulong, 0644);
MODULE_PARM_DESC(max_mb, "Largest request in MB; 0 means total RAM (default: total RAM)");

static unsigned int chunk_mb = 16;
module_param(chunk_mb, uint, 0644);
MODULE_PARM_DESC(chunk_mb, "Reclaim in chunks of this many MB, checking for a fatal signal between them (1-1024, default 16)");

/* One reclaim at a time. */
static DEFINE_MUTEX(shrinkmem_lock);

/* Counters for read(); updated under stats_lock, never held while reclaiming. */
static DEFINE_SPINLOCK(stats_lock);
static struct {
	u64 calls;
	u64 pages_requested;
	u64 pages_reclaimed;
	u64 last_requested;
	u64 last_reclaimed;
	u64 last_duration_ns;
	int last_result;
} stats;

static u32 method;

#ifdef SHRINKMEM_EXPORTED

static int shrinkmem_resolve(void)
{
	method = SHRINKMEM_METHOD_EXPORT;
	return 0;
}

/* A direct call: safe with IBT and kCFI. */
static unsigned long shrinkmem_shrink(unsigned long pages)
{
	return shrink_all_memory(pages);
}

#else /* !SHRINKMEM_EXPORTED */

static unsigned long (*shrink_fn)(unsigned long nr_to_reclaim);

/*
 * Find shrink_all_memory() with a kprobe that is registered disabled (never
 * armed) and removed at once. On IBT builds kprobes reports the address past
 * the function's ENDBR (or its sealed replacement), a 4-byte no-op when the
 * CPU does not enforce IBT, which shrinkmem_check_safe() has made sure of.
 */
static int shrinkmem_resolve(void)
{
	struct kprobe kp = {
		.symbol_name = "shrink_all_memory",
		.flags = KPROBE_FLAG_DISABLED,
	};
	int ret;

	ret = register_kprobe(&kp);
	if (ret) {
		pr_err("cannot find shrink_all_memory() with a kprobe (error %d): needs CONFIG_KPROBES and CONFIG_KALLSYMS; alternatives: a kernel that exports it (patches/), or /sys/fs/cgroup/memory.reclaim\n",
		       ret);
		return ret;
	}
	shrink_fn = (unsigned long (*)(unsigned long))kp.addr;
	unregister_kprobe(&kp);
	method = SHRINKMEM_METHOD_KPROBE;
	return 0;
}

static unsigned long shrinkmem_shrink(unsigned long pages)
{
	return shrink_fn(pages);
}

#endif /* SHRINKMEM_EXPORTED */

/* Refuse kernels where the call cannot work or is unsafe; say why once. */
static int shrinkmem_check_safe(void)
{
	if (!IS_ENABLED(CONFIG_HIBERNATION)) {
		pr_err("refusing to load: this kernel is built without CONFIG_HIBERNATION, so it has no shrink_all_memory(); use /sys/fs/cgroup/memory.reclaim (5.19+) or drop_caches instead\n");
		return -EOPNOTSUPP;
	}
#ifndef SHRINKMEM_EXPORTED
	if (IS_ENABLED(CONFIG_CFI_CLANG) || IS_ENABLED(CONFIG_CFI)) {
		pr_err("refusing to load: kCFI would reject an indirect call to shrink_all_memory(); rebuild the kernel with patches/export-shrink_all_memory.patch, or use /sys/fs/cgroup/memory.reclaim (5.19+)\n");
		return -EOPNOTSUPP;
	}
#ifdef CONFIG_X86_KERNEL_IBT
	if (cpu_feature_enabled(X86_FEATURE_IBT)) {
		pr_err("refusing to load: the CPU enforces IBT, so an indirect call to shrink_all_memory() would fault; rebuild the kernel with patches/export-shrink_all_memory.patch, boot with ibt=off, or use /sys/fs/cgroup/memory.reclaim (5.19+)\n");
		return -EOPNOTSUPP;
	}
#endif
#endif /* !SHRINKMEM_EXPORTED */
	return 0;
}

static const char *shrinkmem_method_name(void)
{
	return method == SHRINKMEM_METHOD_EXPORT ? "export" : "kprobe";
}

/* The request limit in pages: max_mb, or total RAM when max_mb is 0. */
static unsigned long shrinkmem_max_pages(void)
{
	unsigned long mb = READ_ONCE(max_mb);

	if (!mb)
		return totalram_pages();
	if (mb > ULONG_MAX >> MB_SHIFT)
		return ULONG_MAX;
	return mb << MB_SHIFT;
}

/*
 * Reclaim up to @pages pages, chunk by chunk. Stops when done, when a chunk
 * reclaims less than it asked for (nothing more to take now), on a fatal
 * signal (-EINTR) or when the system is freezing for suspend.
 */
static int shrinkmem_reclaim(unsigned long pages, unsigned long *reclaimed,
			     u64 *duration_ns)
{
	unsigned long chunk_pages, chunk, got, done = 0;
	u64 start;
	int ret = 0;

	*reclaimed = 0;
	*duration_ns = 0;
	if (mutex_lock_killable(&shrinkmem_lock))
		return -EINTR;

	chunk_pages = (unsigned long)clamp_val(READ_ONCE(chunk_mb), 1U, 1024U) << MB_SHIFT;
	start = ktime_get_ns();
	while (done < pages) {
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		if (freezing(current))
			break;
		chunk = min(pages - done, chunk_pages);
		got = shrinkmem_shrink(chunk);
		done += got;
		if (got < chunk)
			break;
		cond_resched();
	}
	*duration_ns = ktime_get_ns() - start;
	*reclaimed = done;

	spin_lock(&stats_lock);
	stats.calls++;
	stats.pages_requested += pages;
	stats.pages_reclaimed += done;
	stats.last_requested = pages;
	stats.last_reclaimed = done;
	stats.last_duration_ns = *duration_ns;
	stats.last_result = ret;
	spin_unlock(&stats_lock);

	mutex_unlock(&shrinkmem_lock);
	return ret;
}

static ssize_t shrinkmem_read(struct file *file, char __user *buf, size_t count,
			      loff_t *ppos)
{
	char text[512];
	u64 calls, requested, reclaimed, last_req, last_rec, last_ns;
	int last_result, len;

	spin_lock(&stats_lock);
	calls = stats.calls;
	requested = stats.pages_requested;
	reclaimed = stats.pages_reclaimed;
	last_req = stats.last_requested;
	last_rec = stats.last_reclaimed;
	last_ns = stats.last_duration_ns;
	last_result = stats.last_result;
	spin_unlock(&stats_lock);

	len = scnprintf(text, sizeof(text),
			"method: %s\nabi_version: %d\npage_size: %lu\nmax_pages: %lu\n"
			"calls: %llu\npages_requested: %llu\npages_reclaimed: %llu\n"
			"last_pages_requested: %llu\nlast_pages_reclaimed: %llu\n"
			"last_duration_ns: %llu\nlast_result: %d\n",
			shrinkmem_method_name(), SHRINKMEM_ABI_VERSION, PAGE_SIZE,
			shrinkmem_max_pages(), calls, requested, reclaimed,
			last_req, last_rec, last_ns, last_result);
	return simple_read_from_buffer(buf, count, ppos, text, len);
}

/* Text requests: a decimal number of megabytes, optionally newline-ended. */
static ssize_t shrinkmem_write(struct file *file, const char __user *buf,
			       size_t count, loff_t *ppos)
{
	char text[TEXT_MAX + 1];
	unsigned long mb, pages, reclaimed;
	u64 ns;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (!count || count > TEXT_MAX)
		return -EINVAL;
	if (copy_from_user(text, buf, count))
		return -EFAULT;
	text[count] = '\0';
	if (strlen(text) != count)
		return -EINVAL;
	ret = kstrtoul(text, 10, &mb);
	if (ret)
		return ret;
	if (!mb)
		return -EINVAL;
	if (mb > shrinkmem_max_pages() >> MB_SHIFT)
		return -ERANGE;
	pages = mb << MB_SHIFT;

	ret = shrinkmem_reclaim(pages, &reclaimed, &ns);
	pr_info("requested %lu MB, reclaimed %lu pages in %llu us%s\n", mb,
		reclaimed, div_u64(ns, NSEC_PER_USEC), ret ? " (interrupted)" : "");
	return ret ? ret : count;
}

static long shrinkmem_ioctl_reclaim(struct shrinkmem_reclaim __user *argp)
{
	struct shrinkmem_reclaim req;
	unsigned long reclaimed;
	u64 ns;
	int ret;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.reserved || !req.pages_requested)
		return -EINVAL;
	if (req.pages_requested > shrinkmem_max_pages())
		return -ERANGE;

	ret = shrinkmem_reclaim(req.pages_requested, &reclaimed, &ns);
	pr_debug("ioctl requested %llu pages, reclaimed %lu pages in %llu us%s\n",
		 req.pages_requested, reclaimed, div_u64(ns, NSEC_PER_USEC),
		 ret ? " (interrupted)" : "");
	if (ret)
		return ret;
	req.pages_reclaimed = reclaimed;
	req.duration_ns = ns;
	if (copy_to_user(argp, &req, sizeof(req)))
		return -EFAULT;
	return 0;
}

static long shrinkmem_ioctl_info(struct shrinkmem_info __user *argp)
{
	struct shrinkmem_info info = {
		.abi_version = SHRINKMEM_ABI_VERSION,
		.method = method,
		.max_pages = shrinkmem_max_pages(),
		.page_size = PAGE_SIZE,
	};

	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long shrinkmem_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case SHRINKMEM_IOC_RECLAIM:
		if (!capable(CAP_SYS_ADMIN))
			return -EPERM;
		return shrinkmem_ioctl_reclaim(argp);
	case SHRINKMEM_IOC_INFO:
		if (!capable(CAP_SYS_ADMIN))
			return -EPERM;
		return shrinkmem_ioctl_info(argp);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations shrinkmem_fops = {
	.owner = THIS_MODULE,
	.read = shrinkmem_read,
	.write = shrinkmem_write,
	.unlocked_ioctl = shrinkmem_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice shrinkmem_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "shrinkmem",
	.fops = &shrinkmem_fops,
	.mode = 0600,
};

static int __init shrinkmem_init(void)
{
	int ret;

	ret = shrinkmem_check_safe();
	if (ret)
		return ret;
	ret = shrinkmem_resolve();
	if (ret)
		return ret;
	if (!max_mb)
		max_mb = totalram_pages() >> MB_SHIFT;

	ret = misc_register(&shrinkmem_misc);
	if (ret) {
		pr_err("cannot register /dev/shrinkmem (error %d)\n", ret);
		return ret;
	}
	pr_info("ready: shrink_all_memory() via %s, max_mb=%lu\n",
		shrinkmem_method_name(), max_mb);
	return 0;
}

static void __exit shrinkmem_exit(void)
{
	misc_deregister(&shrinkmem_misc);
}

module_init(shrinkmem_init);
module_exit(shrinkmem_exit);

MODULE_DESCRIPTION("Reclaim memory on request through /dev/shrinkmem");
MODULE_AUTHOR("The shrinkd authors");
MODULE_LICENSE("GPL");
MODULE_VERSION(SHRINKMEM_VERSION);
