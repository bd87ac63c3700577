/*
 * calibrate.c: the machine's calibration printed beside the interleaved
 * launch figures: the remap benchmarks' memory figures (memcpy rate, a
 * cache line's latency, dependent and independent) and the cost of one
 * system call (getppid(2), best of several runs), which a launch on a
 * virtual machine pays dozens of times.
 */
#define	_GNU_SOURCE
#include <sys/syscall.h>

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "remap_bench.h"

static double
syscall_ns(void)
{
	struct timespec a, b;
	double best = 1e9, ns;
	int r, i;

	for (r = 0; r < 5; r++) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (i = 0; i < 100000; i++)
			(void)syscall(SYS_getppid);
		clock_gettime(CLOCK_MONOTONIC, &b);
		ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 +
		    (double)(b.tv_nsec - a.tv_nsec)) / 100000;
		if (ns < best)
			best = ns;
	}
	return (best);
}

int
main(void)
{

	printf("calibration: memcpy %.1f GB/s, a cache line %.1f ns "
	    "(dependent %.1f ns), a system call %.0f ns\n",
	    bench_calibrate_copy_gbps(), bench_calibrate_random_line_ns(),
	    bench_calibrate_line_ns(), syscall_ns());
	return (0);
}
