/*
 * cdefs.h: the link-level names of the kernel model's functions.
 *
 * The headers and the sources keep FreeBSD's names (fdrop, finit,
 * copyin, ...), which is how the seed reads; a program that links the
 * library must not find them taken, so each declaration carries
 * FDR_SYM(name), an assembler label that makes its symbol fdr_name.  C
 * and Swift callers write fdrop() and call fdr_fdrop.
 */
#ifndef _FDREMAP_CDEFS_H_
#define	_FDREMAP_CDEFS_H_

#define	FDR_STR_(x)	#x
#define	FDR_STR(x)	FDR_STR_(x)
#define	FDR_SYM(name)	__asm__(FDR_STR(__USER_LABEL_PREFIX__) "fdr_" #name)

#endif /* !_FDREMAP_CDEFS_H_ */
