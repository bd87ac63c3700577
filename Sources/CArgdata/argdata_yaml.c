/*
 * argdata_yaml.c: argdata_print_yaml().
 *
 * The output is the reference's: CloudABI's tag directive and "---",
 * every scalar tagged and double-quoted, maps and sequences in flow style
 * one element a line; a float in the fewest digits that read back to the
 * same double, either zero as "0"; an integer beyond intmax_t and
 * uintmax_t as null.  Unlike the reference, strings are escaped by our
 * own UTF-8 decoder (not the C library's locale, which on Linux leaves
 * the reference printing every string empty), so that any string reads
 * back the same through a YAML parser; timestamps of any year are
 * printed.  The walk is iterative, so any depth can be printed; the
 * indentation stops growing at MAX_INDENT columns (flow content needs no
 * indentation) so that the output stays linear in the input.
 * Malformed values print as null, as in the reference, and a malformed
 * tail of a map or sequence is left out.
 */
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "argdata_impl.h"

#define	MAX_INDENT	64

/* A line break and the indentation of depth levels. */
static void
newline(unsigned long depth, FILE *fp)
{
	int n;

	n = depth > MAX_INDENT / 2 ? MAX_INDENT : (int)depth * 2;
	fprintf(fp, "\n%*s", n, "");
}

/* Binary data as base64. */
static void
print_binary(const uint8_t *p, size_t n, FILE *fp)
{
	static const char digits[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t v;
	size_t i;
	int k;

	fputs("!!binary \"", fp);
	for (i = 0; i < n; i += 3) {
		v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		for (k = 0; k < 4; k++)
			fputc(k <= (int)(n - i) ? digits[(v >> (18 - 6 * k)) &
			    0x3f] : '=', fp);
	}
	fputc('"', fp);
}

/*
 * A string, double-quoted.  Escaped: the quote and backslash, everything
 * outside YAML's printable set (C0 and C1 controls, DEL, U+FFFE, U+FFFF),
 * the characters a parser may take as line breaks or spacing (NEL, LS,
 * PS, NBSP) and the byte-order mark.  The bytes are valid UTF-8.
 */
static void
print_str(const uint8_t *s, size_t n, FILE *fp)
{
	static const char shorthand[] = "0\0\0\0\0\0\0abtnvfr";
	uint32_t cp;
	int len;

	fputs("!!str \"", fp);
	while (n > 0) {
		len = ad_utf8_next(s, n, &cp);
		if (len == 0) {
			cp = 0xfffd;	/* cannot happen: validated */
			len = 1;
		}
		if (cp == '"' || cp == '\\')
			fprintf(fp, "\\%c", (char)cp);
		else if (cp < 0x0e && shorthand[cp] != '\0')
			fprintf(fp, "\\%c", shorthand[cp]);
		else if (cp == 0x1b)
			fputs("\\e", fp);
		else if (cp == 0x85)
			fputs("\\N", fp);
		else if (cp == 0xa0)
			fputs("\\_", fp);
		else if (cp == 0x2028)
			fputs("\\L", fp);
		else if (cp == 0x2029)
			fputs("\\P", fp);
		else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
			fprintf(fp, "\\x%02" PRIx32, cp);
		else if (cp == 0xfeff || cp == 0xfffe || cp == 0xffff)
			fprintf(fp, "\\u%04" PRIx32, cp);
		else
			fwrite(s, 1, (size_t)len, fp);
		s += len;
		n -= (size_t)len;
	}
	fputc('"', fp);
}

/*
 * A finite non-zero double as the reference prints it: the fewest
 * significant digits that read back to it (the reference's %.17e with
 * its trailing zeros cut, on a C library that prints shortest digits),
 * in exponent form without leading zeros in the exponent and without
 * the exponent when it is 0 ("1.5", "2.5e+20", "-1e-7"), with '.' as the
 * decimal point whatever the locale.
 */
static void
print_double(double v, FILE *fp)
{
	char buf[64], *p, *e;
	const char *dp;
	int prec;
	long x;

	for (prec = 0; prec <= 16; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	dp = localeconv()->decimal_point;
	if (strcmp(dp, ".") != 0 && (p = strstr(buf, dp)) != NULL) {
		*p = '.';
		memmove(p + 1, p + strlen(dp), strlen(p + strlen(dp)) + 1);
	}
	e = strchr(buf, 'e');
	x = strtol(e + 1, NULL, 10);
	*e = '\0';
	if (x == 0)
		fprintf(fp, "!!float \"%s\"", buf);
	else
		fprintf(fp, "!!float \"%se%c%ld\"", buf, x < 0 ? '-' : '+',
		    x < 0 ? -x : x);
}

/*
 * A float as the reference prints it: infinities and NaN as YAML spells
 * them, either zero as "0", anything else in exponent form.
 */
static void
print_float(double v, FILE *fp)
{

	if (isnan(v))
		fputs("!!float \".nan\"", fp);
	else if (isinf(v))
		fputs(v < 0 ? "!!float \"-.inf\"" : "!!float \".inf\"", fp);
	else if (v == 0)
		fputs("!!float \"0\"", fp);
	else
		print_double(v, fp);
}

/*
 * An integer; one that fits neither intmax_t nor uintmax_t prints as
 * null, as in the reference.
 */
static void
print_int(const argdata_t *ad, FILE *fp)
{
	intmax_t s;
	uintmax_t u;

	if (argdata_get_int_s(ad, &s, INTMAX_MIN, INTMAX_MAX) == 0)
		fprintf(fp, "!!int \"%jd\"", s);
	else if (argdata_get_int_u(ad, &u, UINTMAX_MAX) == 0)
		fprintf(fp, "!!int \"%ju\"", u);
	else
		fputs("!!null \"null\"", fp);	/* as the reference */
}

/*
 * A timestamp as an ISO 8601 date and time in UTC with nanoseconds, the
 * proleptic Gregorian calendar for any year; false when it does not fit.
 */
static bool
print_timestamp(const uint8_t *p, size_t n, FILE *fp)
{
	int64_t sec, days, secs, z, era, doe, yoe, doy, mp, y, m, d;
	uint32_t nsec;

	if (ad_timestamp_split(p, n, &sec, &nsec) != 0)
		return (false);
	days = sec / 86400;
	secs = sec % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	/* Days since 1970-01-01 to a civil date (eras of 400 years). */
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + era * 400 + (m <= 2);
	fprintf(fp, "!!timestamp \"%s%04" PRId64 "-%02" PRId64 "-%02" PRId64
	    "T%02" PRId64 ":%02" PRId64 ":%02" PRId64 ".%09" PRIu32 "Z\"",
	    y < 0 ? "-" : "", y < 0 ? -y : y, m, d, secs / 3600,
	    secs / 60 % 60, secs % 60, nsec);
	return (true);
}

/* A leaf: a scalar, null, or a malformed value (printed as null). */
static void
print_leaf(const argdata_t *ad, FILE *fp)
{
	const uint8_t *p;
	const void *bin;
	const char *str;
	size_t n;
	double f;
	bool b;
	int fd;

	if (argdata_get_binary(ad, &bin, &n) == 0) {
		print_binary(bin, n, fp);
		return;
	}
	if (argdata_get_str(ad, &str, &n) == 0) {
		print_str((const uint8_t *)str, n, fp);
		return;
	}
	switch (argdata_get_fd(ad, &fd)) {
	case 0:
		fprintf(fp, "!fd \"%d\"", fd);
		return;
	case EBADF:
		fputs("!fd \"invalid\"", fp);
		return;
	}
	if (argdata_get_bool(ad, &b) == 0) {
		fputs(b ? "!!bool \"true\"" : "!!bool \"false\"", fp);
		return;
	}
	if (argdata_get_float(ad, &f) == 0) {
		print_float(f, fp);
		return;
	}
	if (ad_payload(ad, ADT_INT, &p, &n) == 0) {
		print_int(ad, fp);
		return;
	}
	if (ad_payload(ad, ADT_TIMESTAMP, &p, &n) == 0 &&
	    print_timestamp(p, n, fp))
		return;
	fputs("!!null \"null\"", fp);
}

/* Before an element of a container: its line, and "? " or ": " in a map. */
static void
element_begin(uint8_t ptag, size_t pindex, size_t depth, FILE *fp)
{

	newline(depth, fp);
	if (ptag == ADT_MAP)
		fputs(pindex % 2 == 0 ? "? " : ": ", fp);
}

/* After an element: a comma, unless it is a key. */
static void
element_end(uint8_t ptag, size_t pindex, FILE *fp)
{

	if (ptag != ADT_MAP || pindex % 2 == 1)
		fputc(',', fp);
}

/*
 * Whether the container ad is malformed at its first element, which the
 * reference does not take for a container at all (its iterator is
 * INVALID at once): then it prints as null.
 */
static bool
malformed_at_first(const argdata_t *ad, uint8_t tag)
{
	argdata_map_iterator_t mi;
	argdata_seq_iterator_t si;

	if (tag == ADT_MAP) {
		argdata_map_iterate(ad, &mi);
		return (mi.index == ARGDATA_ITERATOR_INVALID);
	}
	argdata_seq_iterate(ad, &si);
	return (si.index == ARGDATA_ITERATOR_INVALID);
}

/* See argdata.h. */
void
argdata_print_yaml(const argdata_t *ad, FILE *fp)
{
	const struct ad_frame *parent;
	struct ad_walk w;
	enum ad_event ev;
	size_t nulled = SIZE_MAX;	/* depth of a container printed null */

	fputs("%TAG ! tag:nuxi.nl,2015:cloudabi/\n---\n", fp);
	ad_walk_init(&w, ad);
	while ((ev = ad_walk_next(&w)) != AD_EV_DONE) {
		if (nulled != SIZE_MAX && (ev != AD_EV_LEAVE ||
		    w.w_depth != nulled))
			continue;	/* inside it: nothing printed */
		if (nulled != SIZE_MAX) {
			nulled = SIZE_MAX;
			if (w.w_depth > 0) {
				parent = ad_walk_top(&w);
				element_end(parent->f_tag, parent->f_index - 1,
				    fp);
			}
			continue;
		}
		switch (ev) {
		case AD_EV_LEAF:
			if (w.w_vdepth > 0)
				element_begin(w.w_ptag, w.w_pindex, w.w_vdepth,
				    fp);
			print_leaf(w.w_node, fp);
			if (w.w_vdepth > 0)
				element_end(w.w_ptag, w.w_pindex, fp);
			break;
		case AD_EV_ENTER:
			if (w.w_vdepth > 0)
				element_begin(w.w_ptag, w.w_pindex, w.w_vdepth,
				    fp);
			if (malformed_at_first(w.w_node, w.w_tag)) {
				fputs("!!null \"null\"", fp);
				nulled = w.w_vdepth;
				break;
			}
			fputs(w.w_tag == ADT_MAP ? "!!map {" : "!!seq [", fp);
			break;
		default:
			if (w.w_count > 0)
				newline(w.w_depth, fp);
			fputc(w.w_tag == ADT_MAP ? '}' : ']', fp);
			if (w.w_depth > 0) {
				parent = ad_walk_top(&w);
				element_end(parent->f_tag, parent->f_index - 1,
				    fp);
			}
			break;
		}
	}
	ad_walk_fini(&w);
	fputc('\n', fp);
}
