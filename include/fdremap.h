/*
 * fdremap.h: everything of FDRemap for C callers.
 *
 *	fdremap/kernel.h	the kernel model: files, descriptor tables,
 *				processes, CloudABI's exec
 *	argdata.h		argdata: the argument tree with descriptors,
 *				its encoding, YAML and stream messages
 *	fdremap/program.h	the host launcher: real programs started
 *				with exactly the descriptors they are given
 */
#ifndef _FDREMAP_H_
#define _FDREMAP_H_

#include <fdremap/kernel.h>
#include <argdata.h>
#include <fdremap/program.h>

#endif /* !_FDREMAP_H_ */
