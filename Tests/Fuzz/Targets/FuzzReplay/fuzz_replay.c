/*
 * fuzz_replay.c: the main() of the fuzz targets when they are not built
 * as fuzzers.  It is weak: built with --sanitize=fuzzer, libFuzzer's main()
 * replaces it and drives LLVMFuzzerTestOneInput; built by a plain `swift
 * build`, it feeds LLVMFuzzerTestOneInput the files named on the command
 * line, to replay a corpus or a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fuzz_replay.h"

/* Replay each file named on the command line (at most 1 MiB of each). */
__attribute__((weak)) int
main(int argc, char **argv)
{
	static uint8_t buf[1 << 20];

	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		size_t n;

		if (f == NULL) {
			perror(argv[i]);
			return (1);
		}
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("%s: %d inputs replayed\n", argv[0], argc - 1);
	return (0);
}
