/*
 * fuzz_replay.h: what each fuzz target defines, for the replaying main().
 */
#ifndef _FUZZ_REPLAY_H_
#define _FUZZ_REPLAY_H_

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry: run one input; always returns 0. */
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* !_FUZZ_REPLAY_H_ */
