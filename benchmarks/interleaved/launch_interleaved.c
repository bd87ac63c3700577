/*
 * launch_interleaved.c: the launch benchmark's closest rows timed in one
 * process, in turn, round after round: the floor (clone, dup2 loop,
 * close_range, execve), ours (program_spawn_raw, given argv[0] as the
 * other two are: pa_name "/bin/true"), glibc's posix_spawn with its file
 * actions built once, and ours again naming argv[0] itself from the
 * descriptor (no attr: a readlink of /proc/self/fd/N), and the fresh
 * floor (the floor done our launcher's way: the files sent through a
 * socket, the child's table unshared from ours and filled with them,
 * launch_bench.h).  Medians of each.  The
 * package-benchmark rows run one after another in processes of their
 * own, so a shared machine's drift between them shows in their ratios;
 * here it falls on all three alike.
 *
 *   launch_interleaved K ROUNDS [random]
 *
 * The sources are /dev/null at K + 64 ... (or as high as RLIMIT_NOFILE
 * allows, overlapping the targets at most by what is left), given in
 * descending order, or in a seeded random order with "random".
 */
#define	_GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fdremap/program.h>

#include "launch_bench.h"

static int
cmp(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a;
	unsigned long long y = *(const unsigned long long *)b;

	return (x < y ? -1 : x > y);
}

/* The list: sources base .. base + k - 1, descending or shuffled. */
static int *
make_list(int base, int k, int shuffled)
{
	unsigned int s = 1;
	int *fds, i, j, t;

	fds = malloc(sizeof(*fds) * (size_t)(k + 1));
	if (fds == NULL)
		return (NULL);
	for (i = 0; i < k; i++)
		fds[i] = base + k - 1 - i;
	for (i = k - 1; shuffled && i > 0; i--) {
		s = s * 1103515245u + 12345u;
		j = (int)((s >> 8) % (unsigned int)(i + 1));
		t = fds[i];
		fds[i] = fds[j];
		fds[j] = t;
	}
	return (fds);
}

int
main(int argc, char **argv)
{
	static const char *const names[5] = { "floor", "ours", "prebuilt",
	    "ours unnamed", "fresh floor" };
	struct program_attr attr;
	const char *path = "/bin/true";
	unsigned long long *t[5], t0;
	int k, n, base, exe, w, r, error, *fds;
	long limit;
	pid_t pid;

	if (argc < 3) {
		fprintf(stderr, "usage: launch_interleaved K ROUNDS [random]\n");
		return (2);
	}
	k = atoi(argv[1]);
	n = atoi(argv[2]);
	limit = launch_raise_nofile();
	base = k + 64 < limit - 100 - k ? k + 64 : (int)(limit - 100 - k);
	if (base < 3 || launch_open_sources(base, k) != 0) {
		fprintf(stderr, "cannot open %d descriptors\n", k);
		return (1);
	}
	fds = make_list(base, k, argc > 3 && strcmp(argv[3], "random") == 0);
	exe = launch_open_exec(path);
	if (fds == NULL || exe < 0 || launch_actions_build(fds, (size_t)k)) {
		fprintf(stderr, "setup failed\n");
		return (1);
	}
	memset(&attr, 0, sizeof(attr));
	attr.pa_name = path;
	for (w = 0; w < 5; w++)
		if ((t[w] = malloc(sizeof(**t) * (size_t)n)) == NULL)
			return (1);
	for (r = 0; r < n; r++) {
		for (w = 0; w < 5; w++) {
			t0 = launch_now_ns();
			if (w == 0)
				error = launch_floor(path, fds, (size_t)k, &pid);
			else if (w == 1 || w == 3)
				error = program_spawn_raw(exe, NULL, 0, fds,
				    (size_t)k, w == 1 ? &attr : NULL, &pid);
			else if (w == 2)
				error = launch_posix_spawn_prebuilt(path, &pid);
			else
				error = launch_floor_fresh(path, fds, (size_t)k,
				    &pid);
			if (error != 0 || launch_wait(pid) != 0) {
				fprintf(stderr, "%s: error %d\n", names[w], error);
				return (1);
			}
			t[w][r] = launch_now_ns() - t0;
		}
	}
	for (w = 0; w < 5; w++)
		qsort(t[w], (size_t)n, sizeof(**t), cmp);
	printf("k=%d %s: floor %llu us, ours %llu us, prebuilt %llu us, "
	    "ours unnamed %llu us, fresh floor %llu us; ours/floor %.3f, "
	    "ours/prebuilt %.3f, unnamed/floor %.3f, ours/fresh floor %.3f\n",
	    k, argc > 3 ? "random" : "descending", t[0][n / 2] / 1000,
	    t[1][n / 2] / 1000, t[2][n / 2] / 1000, t[3][n / 2] / 1000,
	    t[4][n / 2] / 1000,
	    (double)t[1][n / 2] / (double)t[0][n / 2],
	    (double)t[1][n / 2] / (double)t[2][n / 2],
	    (double)t[3][n / 2] / (double)t[0][n / 2],
	    (double)t[1][n / 2] / (double)t[4][n / 2]);
	return (0);
}
