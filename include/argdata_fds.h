/*
 * argdata_fds.h: FDRemap's one addition to the argdata library, for
 * writers that encode a tree themselves (the Swift module): give the
 * descriptor values their indices as argdata_serialize() would.  Not
 * part of CloudABI's argdata.h.
 */
#ifndef _ARGDATA_FDS_H_
#define _ARGDATA_FDS_H_

#include <stddef.h>
#include <stdint.h>

/*
 * In an encoding whose descriptor values hold descriptor numbers (the
 * 4-byte big-endian payload at each of the n offsets into buf, in order
 * of appearance; FFFFFFFF for an invalid one), replace each number by
 * its index in fds, numbering in order of first appearance and listing
 * each descriptor once, exactly as argdata_serialize() does; a payload
 * above INT32_MAX is no descriptor: it becomes FFFFFFFF, not listed.  fds has room for n.  Returns the list's
 * length.  Cannot fail: without memory for its index it scans the list.
 */
size_t	argdata_index_fds(uint8_t *buf, const size_t *offsets, size_t n,
	    int *fds);

#endif /* !_ARGDATA_FDS_H_ */
