/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * shrinkmem: reclaim memory on request through /dev/shrinkmem.
 *
 * The device takes two kinds of request, both needing CAP_SYS_ADMIN:
 *
 * - text: write a number of megabytes, e.g. "100\n", to reclaim about that
 *   much memory;
 * - binary: the %SHRINKMEM_IOC_RECLAIM ioctl below, which takes pages and
 *   reports what was reclaimed, how long it took and why it stopped.
 *
 * The capability is that of whoever opened the file: a privileged process
 * handed a descriptor opened by an unprivileged one cannot reclaim through it.
 *
 * %SHRINKMEM_IOC_INFO reports the ABI version and how the module reaches the
 * kernel's reclaim function; read() returns the same and counters as text.
 * Neither needs a capability beyond permission to open the node.
 *
 * Every field is fixed-width and naturally aligned, so 32-bit and 64-bit
 * callers share one layout. Fields marked "must be 0" are checked: a non-zero
 * value is rejected with EINVAL, which leaves room to extend the ABI.
 */
#ifndef _UAPI_LINUX_SHRINKMEM_H
#define _UAPI_LINUX_SHRINKMEM_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Raised whenever a structure or the meaning of a field changes. */
#define SHRINKMEM_ABI_VERSION 2

/* Values of &struct shrinkmem_info.method */
#define SHRINKMEM_METHOD_EXPORT 1 /* the kernel exports shrink_all_memory() */
#define SHRINKMEM_METHOD_KPROBE 2 /* its address was found with a kprobe */

/*
 * Values of &struct shrinkmem_reclaim.result: why a request ended before
 * reclaiming all it asked for (0: it did).
 */
/* A fatal signal was pending: stopped between chunks (handled signals wait for the end). */
#define SHRINKMEM_RESULT_INTERRUPTED 0x1
/* The system is freezing tasks for suspend or hibernation: stopped between chunks. */
#define SHRINKMEM_RESULT_FROZEN 0x2
/* A chunk reclaimed less than an eighth of what it asked for: next to nothing more to take now. */
#define SHRINKMEM_RESULT_SHORT 0x4

/**
 * struct shrinkmem_reclaim - argument of %SHRINKMEM_IOC_RECLAIM
 * @pages_requested: in: pages to reclaim; at least 1 and at most the limit
 *                   set by the module parameter max_mb (else EINVAL or
 *                   ERANGE)
 * @pages_reclaimed: out: pages the kernel reclaimed, also when the request
 *                   was stopped part-way; less than requested when it found
 *                   next to nothing more to take, possibly a little more
 *                   since reclaim works in batches
 * @duration_ns:     out: time the reclaim took, in nanoseconds
 * @flags:           in: no flags are defined yet; must be 0
 * @result:          in: must be 0; out: 0 when the whole request was
 *                   reclaimed, else one of %SHRINKMEM_RESULT_INTERRUPTED,
 *                   %SHRINKMEM_RESULT_FROZEN or %SHRINKMEM_RESULT_SHORT
 */
struct shrinkmem_reclaim {
	__u64 pages_requested;
	__u64 pages_reclaimed;
	__u64 duration_ns;
	__u32 flags;
	__u32 result;
};

/**
 * struct shrinkmem_info - argument of %SHRINKMEM_IOC_INFO
 * @abi_version: out: %SHRINKMEM_ABI_VERSION of the loaded module
 * @method:      out: %SHRINKMEM_METHOD_EXPORT or %SHRINKMEM_METHOD_KPROBE
 * @max_pages:   out: the largest request accepted now, in pages
 * @page_size:   out: bytes per page
 * @reserved:    out: 0
 */
struct shrinkmem_info {
	__u32 abi_version;
	__u32 method;
	__u64 max_pages;
	__u32 page_size;
	__u32 reserved;
};

/* A type code that Documentation/userspace-api/ioctl/ioctl-number.rst does not list. */
#define SHRINKMEM_IOC_MAGIC 'Y'

/*
 * SHRINKMEM_IOC_RECLAIM - reclaim up to pages_requested pages.
 * Blocks until done, one request at a time. Once a request runs, it returns 0
 * with what it reclaimed: a fatal signal or the freezer stops it between
 * chunks and sets @result. The reply is written back to the caller's buffer
 * before reclaiming, so a buffer that cannot be written fails with EFAULT and
 * nothing reclaimed (if it stops being writable during the reclaim, EFAULT
 * comes after it, and the reclaim shows in read()'s counters).
 * Errors: EBADF on a descriptor not opened for writing, EPERM when the opener
 * lacks CAP_SYS_ADMIN, EINVAL for 0 pages or
 * non-zero flags/result, ERANGE above the max_mb limit, EFAULT for a bad
 * pointer, EINTR when a signal arrives while waiting for another request
 * (nothing reclaimed; restarted instead for SA_RESTART handlers).
 */
#define SHRINKMEM_IOC_RECLAIM _IOWR(SHRINKMEM_IOC_MAGIC, 0x01, struct shrinkmem_reclaim)

/* SHRINKMEM_IOC_INFO - fill &struct shrinkmem_info. Errors: EFAULT. */
#define SHRINKMEM_IOC_INFO _IOR(SHRINKMEM_IOC_MAGIC, 0x02, struct shrinkmem_info)

#endif /* _UAPI_LINUX_SHRINKMEM_H */
