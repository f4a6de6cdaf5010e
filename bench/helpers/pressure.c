// SPDX-License-Identifier: GPL-2.0
/*
 * Another task's anonymous allocations while a reclaim runs (bench/reclaim_safety.py).
 *
 * Maps, touches (one write per base page: every fault takes a page from the allocator)
 * and unmaps CHUNK_KB chunks in a ring of RING_MB, so the process's size stays at RING_MB
 * while it allocates all the time. Transparent huge pages are refused (MADV_NOHUGEPAGE):
 * each fault is one order-0 allocation, the kind every task makes. One line per chunk to
 * OUT: the CLOCK_MONOTONIC nanoseconds when the chunk was mapped and the nanoseconds its
 * faults took, or -1 when the mapping failed. Stops on SIGTERM or SIGINT.
 *
 *     pressure RING_MB CHUNK_KB OUT
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
	struct sigaction action = { .sa_handler = on_signal };
	long ring_mb, chunk_kb, slots, page, round = 0;
	size_t chunk;
	char **ring;
	FILE *out;

	if (argc != 4) {
		fprintf(stderr, "usage: pressure RING_MB CHUNK_KB OUT\n");
		return 2;
	}
	ring_mb = atol(argv[1]);
	chunk_kb = atol(argv[2]);
	if (ring_mb <= 0 || chunk_kb <= 0 || ring_mb * 1024 < chunk_kb) {
		fprintf(stderr, "pressure: RING_MB and CHUNK_KB must be positive, the ring at least one chunk\n");
		return 2;
	}
	chunk = (size_t)chunk_kb * 1024;
	slots = ring_mb * 1024 / chunk_kb;
	ring = calloc(slots, sizeof(*ring));
	out = fopen(argv[3], "w");
	if (!ring || !out) {
		perror("pressure");
		return 1;
	}
	setvbuf(out, NULL, _IOFBF, 1 << 16);
	sigaction(SIGTERM, &action, NULL);
	sigaction(SIGINT, &action, NULL);
	page = sysconf(_SC_PAGESIZE);
	while (!stop) {
		long slot = round % slots;
		long long started;
		size_t offset;
		char *p;

		if (ring[slot]) {
			munmap(ring[slot], chunk);
			ring[slot] = NULL;
		}
		started = now_ns();
		p = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			fprintf(out, "%lld -1\n", started);
			usleep(1000);
			continue;
		}
		madvise(p, chunk, MADV_NOHUGEPAGE);
		for (offset = 0; offset < chunk; offset += page)
			p[offset] = (char)round;
		fprintf(out, "%lld %lld\n", started, now_ns() - started);
		ring[slot] = p;
		round++;
	}
	fclose(out);
	return 0;
}
