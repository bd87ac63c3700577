/*
 * fuzz_argdata_swift.c: the program fuzz-argdata-swift.  Its
 * LLVMFuzzerTestOneInput is Swift
 * (Tests/Fuzz/Targets/FuzzArgdataSwiftEntry); its main() is libFuzzer's when built with --sanitize=fuzzer
 * (Tests/Fuzz/run.sh), and FuzzReplay's otherwise, as for fuzz-fdrun.
 */
#include <fuzz_replay.h>
