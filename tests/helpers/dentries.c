/* Create COUNT negative dentries under DIR: stat() names that do not exist.
 * Reclaimable slab that only reclaim (or drop_caches) frees; used by tests/workloads.py,
 * where a Python loop of os.stat() would take minutes under software emulation.
 * Usage: dentries DIR COUNT
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
	char name[4096];
	struct stat st;
	long count, i;

	if (argc != 3) {
		fprintf(stderr, "usage: %s DIR COUNT\n", argv[0]);
		return 2;
	}
	count = strtol(argv[2], NULL, 10);
	for (i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "%s/n%lx", argv[1], i);
		stat(name, &st);
	}
	return 0;
}
