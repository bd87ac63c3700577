/*
 * calibrate.c: the machine's calibration printed beside the interleaved
 * launch figures: the remap benchmarks' memory figures (memcpy rate, a
 * cache line's latency, dependent and independent) and the cost of one
 * system call (getppid(2), best of several runs), which a launch on a
 * virtual machine pays dozens of times.
 */
#define	_GNU_SOURCE
#include <stdio.h>

#include "remap_bench.h"

int
main(void)
{

	printf("calibration: memcpy %.1f GB/s, a cache line %.1f ns "
	    "(dependent %.1f ns), a system call %.0f ns\n",
	    bench_calibrate_copy_gbps(), bench_calibrate_random_line_ns(),
	    bench_calibrate_line_ns(), bench_calibrate_syscall_ns());
	return (0);
}
