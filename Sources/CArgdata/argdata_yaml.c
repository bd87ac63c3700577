/*
 * argdata_yaml.c: argdata_print_yaml().
 *
 * The layout is the reference's: a YAML 1.2 document under CloudABI's tag
 * directive, every scalar tagged and double-quoted, maps and sequences in
 * flow style one element a line.  Unlike the reference, strings are
 * escaped by our own UTF-8 decoder (not the C library's locale), so that
 * any string reads back the same through a YAML 1.2 parser; a float keeps
 * the sign of zero and is printed in the fewest digits that read back to
 * the same double; integers of any length and timestamps of any year are
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
#define	MAX_DECIMAL	64	/* bytes of the largest int printed in decimal */

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
 * A finite non-zero double in the fewest significant digits that read
 * back to it, with '.' as the decimal point whatever the locale.
 */
static void
print_double(double v, FILE *fp)
{
	char buf[64], *p;
	const char *dp;
	int prec;

	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	dp = localeconv()->decimal_point;
	if (strcmp(dp, ".") != 0 && (p = strstr(buf, dp)) != NULL) {
		*p = '.';
		memmove(p + 1, p + strlen(dp), strlen(p + strlen(dp)) + 1);
	}
	fprintf(fp, "!!float \"%s\"", buf);
}

/* A float: infinities and NaN as YAML spells them, the sign of zero kept. */
static void
print_float(double v, FILE *fp)
{

	if (isnan(v))
		fputs("!!float \".nan\"", fp);
	else if (isinf(v))
		fputs(v < 0 ? "!!float \"-.inf\"" : "!!float \".inf\"", fp);
	else if (v == 0)
		fputs(signbit(v) ? "!!float \"-0\"" : "!!float \"0\"", fp);
	else
		print_double(v, fp);
}

/*
 * An integer of any length (a trimmed two's complement payload): decimal
 * up to MAX_DECIMAL bytes, hexadecimal beyond (decimal conversion is
 * quadratic).
 */
static void
print_bigint(const uint8_t *p, size_t n, FILE *fp)
{
	uint8_t mag[MAX_DECIMAL];
	char digits[MAX_DECIMAL * 3 + 1];
	unsigned int b, rem;
	size_t i, k, nd, start;
	bool neg;

	neg = (p[0] & 0x80) != 0;
	if (n > MAX_DECIMAL) {
		/*
		 * Hexadecimal of the magnitude.  For a negative x, -x = ~x + 1:
		 * the carry of the + 1 runs through the trailing 00 bytes of
		 * x (which stay 00) into its last non-zero byte k.
		 */
		fputs(neg ? "!!int \"-0x" : "!!int \"0x", fp);
		for (k = n - 1; k > 0 && p[k] == 0; k--)
			;
		for (i = 0; i < n; i++) {
			b = p[i];
			if (neg && i < k)
				b = ~b & 0xff;
			else if (neg && i == k)
				b = (~b + 1) & 0xff;
			fprintf(fp, "%02x", b);
		}
		fputc('"', fp);
		return;
	}
	for (i = 0; i < n; i++)
		mag[i] = neg ? (uint8_t)~p[i] : p[i];
	if (neg)	/* add one */
		for (i = n; i-- > 0 && ++mag[i] == 0;)
			;
	nd = 0;
	for (start = 0; start < n;) {
		rem = 0;
		for (i = start; i < n; i++) {
			rem = rem << 8 | mag[i];
			mag[i] = (uint8_t)(rem / 10);
			rem %= 10;
		}
		digits[nd++] = (char)('0' + rem);
		while (start < n && mag[start] == 0)
			start++;
	}
	fputs(neg ? "!!int \"-" : "!!int \"", fp);
	while (nd-- > 0)
		fputc(digits[nd], fp);
	fputc('"', fp);
}

/* An integer payload; 0 is the empty one. */
static void
print_int(const argdata_t *ad, const uint8_t *p, size_t n, FILE *fp)
{
	intmax_t s;
	uintmax_t u;

	if (argdata_get_int_s(ad, &s, INTMAX_MIN, INTMAX_MAX) == 0)
		fprintf(fp, "!!int \"%jd\"", s);
	else if (argdata_get_int_u(ad, &u, UINTMAX_MAX) == 0)
		fprintf(fp, "!!int \"%ju\"", u);
	else {
		ad_int_trim(&p, &n);
		print_bigint(p, n, fp);
	}
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
		print_int(ad, p, n, fp);
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

/* See argdata.h. */
void
argdata_print_yaml(const argdata_t *ad, FILE *fp)
{
	const struct ad_frame *parent;
	struct ad_walk w;
	enum ad_event ev;

	fputs("%YAML 1.2\n%TAG ! tag:nuxi.nl,2015:cloudabi/\n---\n", fp);
	ad_walk_init(&w, ad);
	while ((ev = ad_walk_next(&w)) != AD_EV_DONE) {
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
