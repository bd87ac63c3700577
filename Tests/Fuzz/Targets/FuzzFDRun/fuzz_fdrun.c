/*
 * fuzz_fdrun.c: the program fuzz-fdrun.  Its LLVMFuzzerTestOneInput is
 * Swift (Tests/Fuzz/Targets/FuzzFDRunEntry), since it drives fdrun's
 * configuration;
 * its main() is libFuzzer's when built with --sanitize=fuzzer
 * (Tests/Fuzz/run.sh), and FuzzReplay's otherwise.  A Swift executable
 * would bring a main() of its own, so the program is this C shell.
 */
#include <fuzz_replay.h>
