/*
 * fdremap/kernel.h: the whole kernel model, and nothing of the host.
 */
#ifndef _FDREMAP_KERNEL_H_
#define _FDREMAP_KERNEL_H_

#include <fdremap/file.h>
#include <fdremap/filedesc.h>
#include <fdremap/proc.h>
#include <fdremap/imgact.h>
#include <fdremap/subr.h>

#endif /* !_FDREMAP_KERNEL_H_ */
