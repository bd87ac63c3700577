/*
 * argdata_walk.c: the depth-first walk under argdata_serialize(),
 * argdata_serialized_length() and argdata_print_yaml(), for trees and
 * buffers nested to any depth, without recursion (see argdata_impl.h).
 *
 * Offsets: every element of a container is its length prefix followed by
 * its bytes, so an element's range of serialised bytes, taken as
 * (start of prefix, end of bytes], is disjoint from its siblings'.  After a
 * container closes at offset off, the frame of each open container can be
 * found again from the root by taking, level by level, the element whose
 * range holds off.
 */
#include <assert.h>
#include <string.h>

#include "argdata_impl.h"

/* Begin a walk over root.  Cannot fail; ad_walk_fini() ends it. */
void
ad_walk_init(struct ad_walk *w, const argdata_t *root)
{

	memset(w, 0, offsetof(struct ad_walk, w_inline));
	w->w_root = root;
	w->w_ring = w->w_inline;
	w->w_cap = AD_WALK_INLINE;
}

/* Release what the walk allocated. */
void
ad_walk_fini(struct ad_walk *w)
{

	if (w->w_ring != w->w_inline)
		ad_free(w->w_ring);
	w->w_ring = NULL;
}

/* The frame of the innermost open container (there must be one). */
const struct ad_frame *
ad_walk_top(const struct ad_walk *w)
{

	assert(w->w_depth > 0 && w->w_depth - 1 >= w->w_lo);
	return (&w->w_ring[(w->w_depth - 1) % w->w_cap]);
}

/* A frame at the start of container ad, whose tag is tag. */
static void
frame_init(struct ad_frame *f, const argdata_t *ad, uint8_t tag)
{

	memset(f, 0, sizeof(*f));
	f->f_tag = tag;
	if (ad->ad_kind == AD_BUFFER) {
		f->f_pos = ad->ad_buffer.buf + 1;
		f->f_rem = ad->ad_len - 1;
		f->f_convert = ad->ad_buffer.convert;
		f->f_arg = ad->ad_buffer.arg;
	} else
		f->f_node = ad;
}

/*
 * Take the next element of f: true with it in *child (a serialised one is
 * made in *tmp), false when f is exhausted, f_pos and f_rem then holding
 * whatever malformed bytes follow its last valid element.
 */
static bool
frame_next(struct ad_frame *f, argdata_t *tmp, const argdata_t **child)
{
	const argdata_t *c;
	const uint8_t *field;
	size_t len;

	if ((c = f->f_node) != NULL) {
		if (c->ad_kind == AD_MAP) {
			if (f->f_index == 2 * c->ad_map.n)
				return (false);
			*child = f->f_index % 2 == 0 ?
			    c->ad_map.keys[f->f_index / 2] :
			    c->ad_map.values[f->f_index / 2];
		} else {
			if (f->f_index == c->ad_seq.n)
				return (false);
			*child = c->ad_seq.entries[f->f_index];
		}
	} else {
		if (f->f_rem == 0 ||
		    ad_parse_subfield(&f->f_pos, &f->f_rem, &field, &len) != 0)
			return (false);
		ad_init_buffer(tmp, field, len, f->f_convert, f->f_arg);
		*child = tmp;
	}
	f->f_index++;
	return (true);
}

/*
 * Make room in the ring for one more frame: double it while nothing has
 * been forgotten, else (or when that fails) forget the shallowest frame.
 */
static void
ring_make_room(struct ad_walk *w)
{
	struct ad_frame *ring;

	if (w->w_depth - w->w_lo < w->w_cap)
		return;
	if (!w->w_fixed && w->w_lo == 0 &&
	    w->w_cap <= SIZE_MAX / 2 / sizeof(*ring)) {
		if (w->w_ring == w->w_inline) {
			ring = ad_malloc(2 * w->w_cap * sizeof(*ring));
			if (ring != NULL)
				memcpy(ring, w->w_inline,
				    w->w_cap * sizeof(*ring));
		} else
			ring = ad_reallocarray(w->w_ring, 2 * w->w_cap,
			    sizeof(*ring));
		if (ring != NULL) {
			w->w_ring = ring;
			w->w_cap *= 2;
			return;
		}
		w->w_fixed = true;
	}
	w->w_lo++;
}

/*
 * Rebuild the forgotten frames down to depth w_depth - 1 (the innermost
 * open container), the walk being at offset w_off just after the close
 * of its element.  Keeps the deepest w_cap of them.
 */
static void
ring_refill(struct ad_walk *w)
{
	struct ad_frame f;
	const argdata_t *child;
	argdata_t tmp;
	size_t base, c, end, k, lo, top;
	uint8_t tag;
	bool ok;

	w->w_refills++;
	top = w->w_depth - 1;
	lo = top + 1 > w->w_cap ? top + 1 - w->w_cap : 0;
	ok = ad_is_container(w->w_root, &tag);
	assert(ok);
	frame_init(&f, w->w_root, tag);
	base = 1;
	for (k = 0;; k++) {
		/* Move f past its element whose range holds w_off. */
		for (c = base;; c = end) {
			ok = frame_next(&f, &tmp, &child);
			assert(ok);
			end = c + ad_prefix_len(child->ad_len) + child->ad_len;
			if (w->w_off <= end)
				break;
		}
		if (k >= lo)
			w->w_ring[k % w->w_cap] = f;
		if (k == top)
			break;
		base = end - child->ad_len + 1;
		ok = ad_is_container(child, &tag);
		assert(ok);
		frame_init(&f, child, tag);
	}
	(void)ok;
	w->w_lo = lo;
}

/* Report ad, the root or an element of the innermost container. */
static enum ad_event
visit(struct ad_walk *w, const argdata_t *ad)
{
	const struct ad_frame *parent;
	uint8_t tag;

	w->w_node = ad;
	w->w_vdepth = w->w_depth;
	w->w_ptag = 0;
	w->w_pindex = 0;
	if (w->w_depth > 0) {
		parent = ad_walk_top(w);
		w->w_ptag = parent->f_tag;
		w->w_pindex = parent->f_index - 1;
	}
	if (!ad_is_container(ad, &tag)) {
		w->w_off += ad->ad_len;
		return (AD_EV_LEAF);
	}
	ring_make_room(w);
	frame_init(&w->w_ring[w->w_depth % w->w_cap], ad, tag);
	w->w_depth++;
	w->w_tag = tag;
	w->w_off += 1;
	return (AD_EV_ENTER);
}

/*
 * The next event of the walk: the root first, then for each element of
 * an open container (in the order of the serialised bytes) LEAF or ENTER,
 * and LEAVE when the container is exhausted; DONE at the end.
 */
enum ad_event
ad_walk_next(struct ad_walk *w)
{
	struct ad_frame *f;
	const argdata_t *child;

	if (!w->w_started) {
		w->w_started = true;
		return (visit(w, w->w_root));
	}
	if (w->w_depth == 0)
		return (AD_EV_DONE);
	f = &w->w_ring[(w->w_depth - 1) % w->w_cap];
	if (frame_next(f, &w->w_child, &child)) {
		w->w_off += ad_prefix_len(child->ad_len);
		return (visit(w, child));
	}
	w->w_tag = f->f_tag;
	w->w_count = f->f_index;
	w->w_trailer = f->f_node == NULL ? f->f_pos : NULL;
	w->w_trailerlen = f->f_node == NULL ? f->f_rem : 0;
	w->w_off += w->w_trailerlen;
	w->w_depth--;
	if (w->w_depth > 0 && w->w_depth - 1 < w->w_lo)
		ring_refill(w);
	return (AD_EV_LEAVE);
}
