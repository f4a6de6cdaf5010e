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
 * chunks; a fatal signal, or the freezer, stops a request between them. Other
 * signals are delivered when it ends: a handled SIGCHLD, a ptrace attach or a
 * cgroup freeze must not cut a request short.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/ctype.h>
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
#include <linux/seq_file.h>
#include <linux/spinlock.h>
#include <linux/swap.h>
#include <linux/uaccess.h>

#ifdef CONFIG_X86_KERNEL_IBT
#include <asm/cpufeature.h>
#endif

#include "uapi/shrinkmem.h"

#define SHRINKMEM_VERSION "1.2.0"

/* Pages per megabyte. */
#define MB_SHIFT (20 - PAGE_SHIFT)

/*
 * Longest text request accepted for parsing. Longer input is EINVAL; a long
 * number that fits here but not in an unsigned long is ERANGE.
 */
#define TEXT_MAX 64

/*
 * Largest chunk. A chunk cannot be interrupted, so it bounds how long a
 * signal or the freezer (whose timeout is 20 s) waits for a request to stop.
 */
#define CHUNK_MB_MAX 64

/*
 * A chunk that reclaims less than 1/SHORT_DIVISOR of what it asked for ends
 * the request: reclaim found next to nothing to take. A chunk that is short
 * by less does not: the pages it started writing back (anonymous pages to
 * swap, dirty file pages) are freed by a later pass, so the next chunk takes
 * them. Every chunk but the last reclaims at least that share of its ask, so
 * the pages a request's chunks ask for add up to at most SHORT_DIVISOR times
 * what it reclaims, plus the last chunk's ask.
 */
#define SHORT_DIVISOR 8

static unsigned long shrinkmem_total_mb(void)
{
	return totalram_pages() >> MB_SHIFT;
}

/* max_mb: 1 MB up to the machine's RAM; 0 until set (init then sets a quarter of RAM). */
static unsigned long max_mb;

static int shrinkmem_set_max_mb(const char *val, const struct kernel_param *kp)
{
	unsigned long mb;

	if (kstrtoul(val, 10, &mb) || !mb) {
		pr_err("max_mb=%.*s: not a whole number of megabytes from 1 to %lu\n",
		       (int)strcspn(val, "\n"), val, shrinkmem_total_mb());
		return -EINVAL;
	}
	if (mb > shrinkmem_total_mb()) {
		pr_err("max_mb=%lu: more than this machine's %lu MB of RAM\n",
		       mb, shrinkmem_total_mb());
		return -EINVAL;
	}
	WRITE_ONCE(*(unsigned long *)kp->arg, mb);
	return 0;
}

static const struct kernel_param_ops max_mb_ops = {
	.set = shrinkmem_set_max_mb,
	.get = param_get_ulong,
};
module_param_cb(max_mb, &max_mb_ops, &max_mb, 0644);
MODULE_PARM_DESC(max_mb, "Largest request in MB, 1 to total RAM (default: a quarter of RAM)");

static unsigned int chunk_mb = 16;

static int shrinkmem_set_chunk_mb(const char *val, const struct kernel_param *kp)
{
	unsigned int mb;

	if (kstrtouint(val, 10, &mb) || !mb || mb > CHUNK_MB_MAX) {
		pr_err("chunk_mb=%.*s: not a whole number of megabytes from 1 to %d\n",
		       (int)strcspn(val, "\n"), val, CHUNK_MB_MAX);
		return -EINVAL;
	}
	WRITE_ONCE(*(unsigned int *)kp->arg, mb);
	return 0;
}

static const struct kernel_param_ops chunk_mb_ops = {
	.set = shrinkmem_set_chunk_mb,
	.get = param_get_uint,
};
module_param_cb(chunk_mb, &chunk_mb_ops, &chunk_mb, 0644);
MODULE_PARM_DESC(chunk_mb, "Reclaim in chunks of this many MB, checking for signals and the freezer between them (1-64, default 16)");

/* One reclaim at a time. */
static DEFINE_MUTEX(shrinkmem_lock);

/* Counters for read(); updated under stats_lock, never held while reclaiming. */
static DEFINE_SPINLOCK(stats_lock);
static struct shrinkmem_stats {
	u64 calls;
	u64 pages_requested;
	u64 pages_reclaimed;
	u64 last_requested;
	u64 last_reclaimed;
	u64 last_duration_ns;
	u64 longest_chunk_ns;
	int last_result;
	u32 last_flags;
} stats;

/* What one request did. */
struct shrinkmem_outcome {
	unsigned long reclaimed;
	u64 duration_ns;
	u32 flags;	/* SHRINKMEM_RESULT_* */
};

/* Set once at load, read-only after it. */
static u32 method __ro_after_init;

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

static unsigned long (*shrink_fn)(unsigned long nr_to_reclaim) __ro_after_init;

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
	/*
	 * The kprobe's address is the function's entry only where that has been
	 * checked; on powerpc64, for one, it is not (local entry points, function
	 * descriptors). Kbuild stops such builds too; this catches any other.
	 */
	if (!IS_ENABLED(CONFIG_X86_64) && !IS_ENABLED(CONFIG_ARM64) && !IS_ENABLED(CONFIG_ARM)) {
		pr_err("refusing to load: calling shrink_all_memory() through the address a kprobe finds is proven only on x86_64, arm64 and arm; rebuild the kernel with patches/export-shrink_all_memory.patch, or use /sys/fs/cgroup/memory.reclaim (5.19+)\n");
		return -EOPNOTSUPP;
	}
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

/* The request limit in pages. */
static unsigned long shrinkmem_max_pages(void)
{
	return READ_ONCE(max_mb) << MB_SHIFT;
}

static const char *shrinkmem_end_text(u32 flags)
{
	if (flags & SHRINKMEM_RESULT_FROZEN)
		return " (stopped: the system is freezing)";
	if (flags & SHRINKMEM_RESULT_INTERRUPTED)
		return " (interrupted)";
	return "";
}

/*
 * Reclaim up to @pages pages, chunk by chunk. Stops when done, when a chunk
 * reclaims less than an eighth of what it asked for (next to nothing more to
 * take now, see SHORT_DIVISOR), when a fatal signal is pending, or when the
 * system is freezing for suspend; @out says which. @stopped is what the caller
 * returns when a fatal signal stopped the request, kept as last_result.
 * Returns -ERESTARTSYS when a signal came while waiting for another request
 * (nothing done, nothing counted), else 0.
 */
static int shrinkmem_reclaim(unsigned long pages, int stopped,
			     struct shrinkmem_outcome *out)
{
	unsigned long chunk_pages, chunk, got, done = 0;
	u64 start, chunk_start, chunk_ns, longest = 0;
	u32 flags = 0;

	out->reclaimed = 0;
	out->duration_ns = 0;
	out->flags = 0;
	if (mutex_lock_interruptible(&shrinkmem_lock))
		return -ERESTARTSYS;

	chunk_pages = (unsigned long)READ_ONCE(chunk_mb) << MB_SHIFT;
	start = ktime_get_ns();
	while (done < pages) {
		/* The freezer wakes tasks with a fake signal: check it first. */
		if (freezing(current)) {
			flags = SHRINKMEM_RESULT_FROZEN;
			break;
		}
		if (fatal_signal_pending(current)) {
			flags = SHRINKMEM_RESULT_INTERRUPTED;
			break;
		}
		chunk = min(pages - done, chunk_pages);
		chunk_start = ktime_get_ns();
		got = shrinkmem_shrink(chunk);
		chunk_ns = ktime_get_ns() - chunk_start;
		longest = max(longest, chunk_ns);
		done += got;
		if (got * SHORT_DIVISOR < chunk) {
			flags = SHRINKMEM_RESULT_SHORT;
			break;
		}
		cond_resched();
	}
	out->duration_ns = ktime_get_ns() - start;
	out->reclaimed = done;
	out->flags = flags;

	spin_lock(&stats_lock);
	stats.calls++;
	stats.pages_requested += pages;
	stats.pages_reclaimed += done;
	stats.last_requested = pages;
	stats.last_reclaimed = done;
	stats.last_duration_ns = out->duration_ns;
	stats.longest_chunk_ns = max(stats.longest_chunk_ns, longest);
	stats.last_result = (flags & SHRINKMEM_RESULT_INTERRUPTED) ? stopped : 0;
	stats.last_flags = flags;
	spin_unlock(&stats_lock);

	mutex_unlock(&shrinkmem_lock);
	return 0;
}

/* May this file ask for reclaim? The opener's capability decides, not the caller's. */
static bool shrinkmem_may_reclaim(struct file *file)
{
	return file_ns_capable(file, &init_user_ns, CAP_SYS_ADMIN);
}

/* read(): one snapshot per open (or per seek to 0), so partial reads agree. */
static int shrinkmem_show(struct seq_file *m, void *v)
{
	struct shrinkmem_stats snap;

	spin_lock(&stats_lock);
	snap = stats;
	spin_unlock(&stats_lock);

	seq_printf(m, "method: %s\nabi_version: %d\npage_size: %lu\nmax_pages: %lu\n",
		   shrinkmem_method_name(), SHRINKMEM_ABI_VERSION, PAGE_SIZE,
		   shrinkmem_max_pages());
	seq_printf(m, "calls: %llu\npages_requested: %llu\npages_reclaimed: %llu\n",
		   snap.calls, snap.pages_requested, snap.pages_reclaimed);
	seq_printf(m, "last_pages_requested: %llu\nlast_pages_reclaimed: %llu\n",
		   snap.last_requested, snap.last_reclaimed);
	seq_printf(m, "last_duration_ns: %llu\nlast_result: %d\nlast_flags: %u\n",
		   snap.last_duration_ns, snap.last_result, snap.last_flags);
	seq_printf(m, "longest_chunk_ns: %llu\n", snap.longest_chunk_ns);
	return 0;
}

static int shrinkmem_open(struct inode *inode, struct file *file)
{
	/* misc_open() left the miscdevice here; seq_file wants the field empty. */
	file->private_data = NULL;
	return single_open(file, shrinkmem_show, NULL);
}

/*
 * The text request: 1 to TEXT_MAX bytes, decimal digits with no sign and no
 * leading zero, then at most one newline ("100" or "100\n"). Anything else is
 * EINVAL; digits that overflow an unsigned long are ERANGE.
 */
static int shrinkmem_parse_mb(char *text, size_t len, unsigned long *mb)
{
	size_t digits = len, i;

	if (digits && text[digits - 1] == '\n')
		digits--;
	if (!digits || text[0] == '0')
		return -EINVAL;
	for (i = 0; i < digits; i++)
		if (!isdigit(text[i]))
			return -EINVAL;
	text[digits] = '\0';
	return kstrtoul(text, 10, mb);
}

static ssize_t shrinkmem_write(struct file *file, const char __user *buf,
			       size_t count, loff_t *ppos)
{
	char text[TEXT_MAX + 1];
	struct shrinkmem_outcome out;
	unsigned long mb;
	int ret;

	if (!shrinkmem_may_reclaim(file))
		return -EPERM;
	if (!count || count > TEXT_MAX)
		return -EINVAL;
	if (copy_from_user(text, buf, count))
		return -EFAULT;
	ret = shrinkmem_parse_mb(text, count, &mb);
	if (ret)
		return ret;
	if (mb > READ_ONCE(max_mb))
		return -ERANGE;

	/*
	 * A signal while waiting for another request: nothing was done, so the
	 * write restarts transparently under SA_RESTART (EINTR otherwise).
	 */
	ret = shrinkmem_reclaim(mb << MB_SHIFT, -EINTR, &out);
	if (ret)
		return ret;
	pr_debug("requested %lu MB, reclaimed %lu pages in %llu us%s\n", mb,
		 out.reclaimed, div_u64(out.duration_ns, NSEC_PER_USEC),
		 shrinkmem_end_text(out.flags));
	/*
	 * A fatal signal ends the write with EINTR, whatever was reclaimed before
	 * it (read() tells how much); the task is dying, nothing sees a restart.
	 * The freezer ends it as done.
	 */
	if (out.flags & SHRINKMEM_RESULT_INTERRUPTED)
		return -EINTR;
	return count;
}

static long shrinkmem_ioctl_reclaim(struct file *file,
				    struct shrinkmem_reclaim __user *argp)
{
	struct shrinkmem_reclaim req;
	struct shrinkmem_outcome out;
	int ret;

	/* Like write(): a descriptor opened read-only, for statistics, cannot reclaim. */
	if (!(file->f_mode & FMODE_WRITE))
		return -EBADF;
	if (!shrinkmem_may_reclaim(file))
		return -EPERM;
	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.result || !req.pages_requested)
		return -EINVAL;
	if (req.pages_requested > shrinkmem_max_pages())
		return -ERANGE;
	/* Make sure the reply can be written before reclaiming anything. */
	if (copy_to_user(argp, &req, sizeof(req)))
		return -EFAULT;

	/* A fatal signal ends the ioctl as done, with @result saying so. */
	ret = shrinkmem_reclaim(req.pages_requested, 0, &out);
	if (ret)
		return ret;
	pr_debug("ioctl requested %llu pages, reclaimed %lu pages in %llu us%s\n",
		 req.pages_requested, out.reclaimed,
		 div_u64(out.duration_ns, NSEC_PER_USEC),
		 shrinkmem_end_text(out.flags));
	req.pages_reclaimed = out.reclaimed;
	req.duration_ns = out.duration_ns;
	req.result = out.flags;
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
		return shrinkmem_ioctl_reclaim(file, argp);
	case SHRINKMEM_IOC_INFO:
		return shrinkmem_ioctl_info(argp);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations shrinkmem_fops = {
	.owner = THIS_MODULE,
	.open = shrinkmem_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = single_release,
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
	/* Unless given at load: the sysfs file exists already, so only if still unset. */
	cmpxchg(&max_mb, 0UL, max(shrinkmem_total_mb() / 4, 1UL));

	ret = misc_register(&shrinkmem_misc);
	if (ret) {
		pr_err("cannot register /dev/shrinkmem (error %d)\n", ret);
		return ret;
	}
	pr_info("ready: shrink_all_memory() via %s, max_mb=%lu\n",
		shrinkmem_method_name(), READ_ONCE(max_mb));
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
