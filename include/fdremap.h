/*
 * fdremap.h: everything of FDRemap for C callers.
 *
 *	fdremap/kernel.h	the kernel model: files, descriptor tables,
 *				processes, CloudABI's exec
 *	fdremap/program.h	the host launcher: real programs started
 *				with exactly the descriptors they are given
 */
#ifndef _FDREMAP_H_
#define _FDREMAP_H_

#include <fdremap/kernel.h>
#include <fdremap/program.h>

#endif /* !_FDREMAP_H_ */
