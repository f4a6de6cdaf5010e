/* stat() the names DIR/0/0 ... DIR/0/ff, DIR/1/0 ... (file i is DIR/<i / 256>/<i % 256>, in
 * hexadecimal) for i below COUNT: each existing file leaves its inode and dentry cached, a
 * name that does not exist a negative dentry. Reclaimable slab that only reclaim (or
 * drop_caches) frees; used by tests/workloads.py, where a Python loop of os.stat() would
 * take minutes under software emulation. With MIN_FREE_KB, stops early once MemFree in
 * /proc/meminfo falls below it. Prints how many names it looked up and how many existed.
 * Usage: dentries DIR COUNT [MIN_FREE_KB]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static long mem_free_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemFree: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int main(int argc, char **argv)
{
	char name[4096];
	struct stat st;
	long count, floor_kb = 0, found = 0, i;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s DIR COUNT [MIN_FREE_KB]\n", argv[0]);
		return 2;
	}
	count = strtol(argv[2], NULL, 10);
	if (argc == 4)
		floor_kb = strtol(argv[3], NULL, 10);
	for (i = 0; i < count; i++) {
		if (floor_kb && i % 64 == 0 && mem_free_kb() < floor_kb)
			break;
		snprintf(name, sizeof(name), "%s/%lx/%lx", argv[1], i >> 8, i & 0xff);
		if (stat(name, &st) == 0)
			found++;
	}
	printf("%ld %ld\n", i, found);
	return 0;
}
