/*
 * argdata_iter.c: iterating over maps and sequences.
 *
 * An iterator over serialised bytes takes the next element (a map: a key
 * and a value sub-field) when it moves, so argdata_*_get() only hands out
 * what was taken.  When the bytes that follow are not a valid element the
 * iterator ends there with index ARGDATA_ITERATOR_INVALID: the valid
 * elements come first.  The index rules are the reference's (argdata.h).
 */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>

#include "argdata_impl.h"

enum iter_state {
	IT_END,		/* nothing (more) to hand out */
	IT_BUFFER,	/* serialised: the current element is taken */
	IT_MADE,	/* made by argdata_create_map()/_seq() */
};

/*
 * What both iterators hold, first in each.  index is the public field:
 * the current element's position, or ARGDATA_ITERATOR_END or _INVALID.
 */
struct iter {
	ARGDATA_MAX_ALIGN size_t index;
	enum iter_state	state;
	const uint8_t	*pos;		/* IT_BUFFER: the bytes left */
	size_t		 rem;
	const argdata_t	*made;		/* IT_MADE: the container, */
	size_t		 n;		/*   and its number of elements */
};

struct map_iter {
	struct iter	 it;
	argdata_t	 key;
	argdata_t	 value;
};

struct seq_iter {
	struct iter	 it;
	argdata_t	 entry;
};

_Static_assert(sizeof(struct map_iter) <= sizeof(argdata_map_iterator_t),
    "argdata_map_iterator_t is too small");
_Static_assert(alignof(struct map_iter) <= alignof(argdata_map_iterator_t),
    "argdata_map_iterator_t is not aligned enough");
_Static_assert(offsetof(struct map_iter, it.index) ==
    offsetof(argdata_map_iterator_t, index), "index moved");
_Static_assert(sizeof(struct seq_iter) <= sizeof(argdata_seq_iterator_t),
    "argdata_seq_iterator_t is too small");
_Static_assert(alignof(struct seq_iter) <= alignof(argdata_seq_iterator_t),
    "argdata_seq_iterator_t is not aligned enough");
_Static_assert(offsetof(struct seq_iter, it.index) ==
    offsetof(argdata_seq_iterator_t, index), "index moved");

/*
 * Start it over ad, a container made of kind or serialised with tag:
 * true when ad is serialised and its first element must now be taken
 * (proto then carries its descriptor conversion; index is END so that
 * taking it makes 0); false otherwise.  A made container starts at 0 (a
 * made map with no pairs at END, as the reference has it); anything else
 * is INVALID.
 */
static bool
iter_start(struct iter *it, const argdata_t *ad, enum ad_kind kind,
    uint8_t tag, argdata_t *proto)
{

	it->state = IT_END;
	if (ad->ad_kind == kind) {
		it->made = ad;
		it->n = kind == AD_MAP ? ad->ad_map.n : ad->ad_seq.n;
		it->index = kind == AD_MAP && it->n == 0 ?
		    ARGDATA_ITERATOR_END : 0;
		if (it->n > 0)
			it->state = IT_MADE;
		return (false);
	}
	if (ad_payload(ad, tag, &it->pos, &it->rem) != 0) {
		it->index = ARGDATA_ITERATOR_INVALID;
		return (false);
	}
	ad_init_buffer(proto, NULL, 0, ad->ad_buffer.convert,
	    ad->ad_buffer.arg);
	it->state = IT_BUFFER;
	it->index = ARGDATA_ITERATOR_END;
	return (true);
}

/*
 * Take the next sub-field of a serialised container into *ad, with the
 * descriptor conversion of proto: true, or false at the end (index END)
 * or at malformed bytes (index INVALID); the iteration is over then.
 */
static bool
iter_take(struct iter *it, const argdata_t *proto, argdata_t *ad)
{
	const uint8_t *field;
	size_t len;

	if (it->rem == 0) {
		it->state = IT_END;
		it->index = ARGDATA_ITERATOR_END;
		return (false);
	}
	if (ad_parse_subfield(&it->pos, &it->rem, &field, &len) != 0) {
		it->state = IT_END;
		it->index = ARGDATA_ITERATOR_INVALID;
		return (false);
	}
	ad_init_buffer(ad, field, len, proto->ad_buffer.convert,
	    proto->ad_buffer.arg);
	return (true);
}

/*
 * Move an iterator that is not over serialised bytes: a made container
 * to its next element (index counts on to its length, where get stops),
 * anything that has ended to END.
 */
static void
iter_advance(struct iter *it)
{

	if (it->state == IT_MADE) {
		it->index++;
		if (it->index == it->n)
			it->state = IT_END;
	} else
		it->index = ARGDATA_ITERATOR_END;
}

/* Start iterating over the map ad (INVALID and nothing when it is not). */
void
argdata_map_iterate(const argdata_t *ad, argdata_map_iterator_t *it_)
{
	struct map_iter *m = (struct map_iter *)(void *)it_;

	/* The conversion rides along in key. */
	if (iter_start(&m->it, ad, AD_MAP, ADT_MAP, &m->key))
		argdata_map_next(it_);
}

/* The current pair: true, or false when the iteration is over. */
bool
argdata_map_get(const argdata_map_iterator_t *it_, const argdata_t **key,
    const argdata_t **value)
{
	const struct map_iter *m = (const struct map_iter *)(const void *)it_;

	switch (m->it.state) {
	case IT_BUFFER:
		*key = &m->key;
		*value = &m->value;
		return (true);
	case IT_MADE:
		*key = m->it.made->ad_map.keys[m->it.index];
		*value = m->it.made->ad_map.values[m->it.index];
		return (true);
	default:
		return (false);
	}
}

/* Move to the next pair; a key without a value is INVALID. */
void
argdata_map_next(argdata_map_iterator_t *it_)
{
	struct map_iter *m = (struct map_iter *)(void *)it_;
	argdata_t proto;

	if (m->it.state != IT_BUFFER) {
		iter_advance(&m->it);
		return;
	}
	proto = m->key;
	if (!iter_take(&m->it, &proto, &m->key))
		return;
	if (!iter_take(&m->it, &proto, &m->value)) {
		m->it.index = ARGDATA_ITERATOR_INVALID;
		return;
	}
	m->it.index++;		/* END + 1 is 0 */
}

/* Start iterating over the sequence ad (INVALID and nothing if not one). */
void
argdata_seq_iterate(const argdata_t *ad, argdata_seq_iterator_t *it_)
{
	struct seq_iter *q = (struct seq_iter *)(void *)it_;

	if (iter_start(&q->it, ad, AD_SEQ, ADT_SEQ, &q->entry))
		argdata_seq_next(it_);
}

/* The current entry: true, or false when the iteration is over. */
bool
argdata_seq_get(const argdata_seq_iterator_t *it_, const argdata_t **entry)
{
	const struct seq_iter *q = (const struct seq_iter *)(const void *)it_;

	switch (q->it.state) {
	case IT_BUFFER:
		*entry = &q->entry;
		return (true);
	case IT_MADE:
		*entry = q->it.made->ad_seq.entries[q->it.index];
		return (true);
	default:
		return (false);
	}
}

/* Move to the next entry. */
void
argdata_seq_next(argdata_seq_iterator_t *it_)
{
	struct seq_iter *q = (struct seq_iter *)(void *)it_;
	argdata_t proto;

	if (q->it.state != IT_BUFFER) {
		iter_advance(&q->it);
		return;
	}
	proto = q->entry;
	if (iter_take(&q->it, &proto, &q->entry))
		q->it.index++;		/* END + 1 is 0 */
}
