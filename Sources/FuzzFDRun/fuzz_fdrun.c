/*
 * fuzz_fdrun.c: the program around fdrun's fuzz entry (FuzzFDRunEntry,
 * in Swift).  Built by `swift build` as an ordinary program whose weak
 * main() replays the inputs named on the command line; built with
 * `--sanitize=fuzzer`, libFuzzer's main() replaces it and drives
 * LLVMFuzzerTestOneInput.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Replay inputs named on the command line (when not built as a fuzzer). */
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
	printf("fuzz_fdrun: %d inputs replayed\n", argc - 1);
	return (0);
}
