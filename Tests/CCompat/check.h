/*
 * check.h: the C compatibility programs' one assertion: CHECK(cond)
 * counts a pass or reports the failed condition and counts a failure;
 * main() prints the counts and fails when any failed.
 */
#ifndef _CHECK_H_
#define _CHECK_H_

#include <stdio.h>

static int passed, failed;

#define	CHECK(cond) do {						\
	if (cond)							\
		passed++;						\
	else {								\
		failed++;						\
		fprintf(stderr, "%s:%d: failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
	}								\
} while (0)

#endif /* !_CHECK_H_ */
