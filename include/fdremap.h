/*
 * fdremap.h: everything of FDRemap for C callers.
 *
 *	fdremap/kernel.h	the kernel model: files, descriptor tables,
 *				processes, CloudABI's exec
 */
#ifndef _FDREMAP_H_
#define _FDREMAP_H_

#include <fdremap/kernel.h>

#endif /* !_FDREMAP_H_ */
