/*
 * Metrics registry and Prometheus text rendering. Families (name, help, type, buckets) hold
 * series (rendered constant labels + value). Registration and rendering hold the registry's
 * mutex; updates go straight to the series' atomics.
 */
#include "upmon/metrics.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upmon/log.h"

#define MAX_BOUNDS 64

/* A growing output buffer; allocation failure is sticky. */
struct mbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static int mbuf_grow(struct mbuf *b, size_t need);
static void mbuf_printf(struct mbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

enum family_type { FAM_COUNTER, FAM_GAUGE, FAM_HISTOGRAM };

struct family;

struct series {
	struct series *next;
	const struct family *fam;
	char *labels;			/* rendered `a="x",b="y"`, or "" */
	double (*fn)(void *);		/* callback series, else NULL */
	void *arg;
	_Atomic uint64_t value;		/* counter: count; gauge: bits of a double */
	_Atomic uint64_t sum;		/* histogram: bits of the double sum */
	_Atomic uint64_t *buckets;	/* histogram: nbounds + 1 non-cumulative counts */
};

/* The public handles: each is a series (first member), so converting back is defined. */
struct upmon_counter { struct series s; };
struct upmon_gauge { struct series s; };
struct upmon_histogram { struct series s; };

struct family {
	struct family *next;
	char *name, *help;
	enum family_type type;
	double *bounds;
	size_t nbounds;
	struct series *series, **tail;
};

struct upmon_metrics {
	pthread_mutex_t mu;
	struct family *families, **tail;
};

struct upmon_metrics *
upmon_metrics_new(void)
{
	struct upmon_metrics *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	pthread_mutex_init(&m->mu, NULL);
	m->tail = &m->families;
	return m;
}

void
upmon_metrics_free(struct upmon_metrics *m)
{
	struct family *f, *fnext;
	struct series *s, *snext;

	if (m == NULL)
		return;
	for (f = m->families; f != NULL; f = fnext) {
		fnext = f->next;
		for (s = f->series; s != NULL; s = snext) {
			snext = s->next;
			free(s->labels);
			free(s->buckets);
			free(s);
		}
		free(f->name);
		free(f->help);
		free(f->bounds);
		free(f);
	}
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* ---- growing output buffer -------------------------------------------------------------- */

static void
mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p != NULL ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		if (mbuf_grow(b, (size_t)n + 1) < 0)
			return;
	}
}

static int
mbuf_grow(struct mbuf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 1024;
	char *p;

	while (cap - b->len < need)
		cap *= 2;
	if (cap == b->cap)
		return 0;
	if ((p = realloc(b->p, cap)) == NULL) {
		b->oom = 1;
		return -ENOMEM;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Appends s escaped for a label value (label != 0) or a HELP line. */
static void
mbuf_escaped(struct mbuf *b, const char *s, int label)
{
	for (; *s != '\0' && !b->oom; s++) {
		if (*s == '\\')
			mbuf_printf(b, "\\\\");
		else if (*s == '\n')
			mbuf_printf(b, "\\n");
		else if (*s == '"' && label)
			mbuf_printf(b, "\\\"");
		else
			mbuf_printf(b, "%c", *s);
	}
}

/* Formats v the way Prometheus reads it: shortest round-trip form, +Inf, -Inf, NaN. */
static void
format_double(double v, char *buf, size_t size)
{
	int prec;

	if (isnan(v)) {
		snprintf(buf, size, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == floor(v) && fabs(v) < 9007199254740992.0) {	/* whole and below 2^53 */
		snprintf(buf, size, "%.0f", v);
		return;
	}
	/* the shortest form that reads back as the same double */
	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, size, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* ---- registration ----------------------------------------------------------------------- */

static int
valid_name(const char *s, int metric)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || isdigit((unsigned char)s[0]))
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || (metric && s[i] == ':')) ||
		    (unsigned char)s[i] >= 0x80)
			return 0;
	return metric || strncmp(s, "__", 2) != 0;
}

/* Renders the va_list of name, value pairs into `a="x",b="y"`; NULL if invalid or OOM. */
static char *
render_labels(const char *metric, int histogram, va_list ap)
{
	struct mbuf b = { 0 };
	const char *names[16];
	const char *k, *v;
	size_t n = 0, i;

	mbuf_grow(&b, 64);
	while (!b.oom && (k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		if (v == NULL || !valid_name(k, 0) || (histogram && strcmp(k, "le") == 0) ||
		    n == sizeof(names) / sizeof(names[0])) {
			log_warnx("metrics: %s: bad label %s", metric, k);
			goto fail;
		}
		for (i = 0; i < n; i++) {
			if (strcmp(names[i], k) == 0) {
				log_warnx("metrics: %s: label %s given twice", metric, k);
				goto fail;
			}
		}
		names[n++] = k;
		mbuf_printf(&b, "%s%s=\"", n > 1 ? "," : "", k);
		mbuf_escaped(&b, v, 1);
		mbuf_printf(&b, "\"");
	}
	if (b.oom)
		goto fail;
	b.p[b.len] = '\0';
	return b.p;
fail:
	free(b.p);
	return NULL;
}

static struct family *
find_family(struct upmon_metrics *m, const char *name)
{
	struct family *f;

	for (f = m->families; f != NULL; f = f->next)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

static int
same_bounds(const struct family *f, const double *bounds, size_t n)
{
	return f->nbounds == n && (n == 0 || memcmp(f->bounds, bounds, n * sizeof(double)) == 0);
}

/* Finds or creates the family; NULL (logged) on conflict or OOM. Called with m->mu held. */
static struct family *
get_family(struct upmon_metrics *m, const char *name, const char *help,
    enum family_type type, const double *bounds, size_t nbounds)
{
	struct family *f = find_family(m, name);

	if (f != NULL) {
		if (f->type != type || !same_bounds(f, bounds, nbounds)) {
			log_warnx("metrics: %s registered twice with different types or buckets",
			    name);
			return NULL;
		}
		return f;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	f->name = strdup(name);
	f->help = strdup(help != NULL ? help : "");
	if (nbounds > 0 && (f->bounds = malloc(nbounds * sizeof(double))) != NULL)
		memcpy(f->bounds, bounds, nbounds * sizeof(double));
	if (f->name == NULL || f->help == NULL || (nbounds > 0 && f->bounds == NULL)) {
		free(f->name);
		free(f->help);
		free(f->bounds);
		free(f);
		return NULL;
	}
	f->type = type;
	f->nbounds = nbounds;
	f->tail = &f->series;
	*m->tail = f;
	m->tail = &f->next;
	return f;
}

static int
check_registration(const char *name, enum family_type type, const double *bounds,
    size_t nbounds)
{
	size_t i, len = name != NULL ? strlen(name) : 0;

	if (!valid_name(name, 1)) {
		log_warnx("metrics: invalid metric name \"%s\"", name != NULL ? name : "");
		return -EINVAL;
	}
	if (type == FAM_COUNTER && (len < 6 || strcmp(name + len - 6, "_total") != 0)) {
		log_warnx("metrics: counter %s must end in _total", name);
		return -EINVAL;
	}
	if (type != FAM_HISTOGRAM)
		return 0;
	if (nbounds < 1 || nbounds > MAX_BOUNDS || bounds == NULL) {
		log_warnx("metrics: %s: 1..%d buckets needed", name, MAX_BOUNDS);
		return -EINVAL;
	}
	for (i = 0; i < nbounds; i++) {
		if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
			log_warnx("metrics: %s: bucket bounds must be finite and increasing", name);
			return -EINVAL;
		}
	}
	return 0;
}

/* Registers one series; returns it (existing or new) or NULL. */
static struct series *
add_series(struct upmon_metrics *m, const char *name, const char *help, enum family_type type,
    const double *bounds, size_t nbounds, double (*fn)(void *), void *arg, va_list ap)
{
	struct family *f;
	struct series *s = NULL;
	char *labels;

	if (m == NULL || check_registration(name, type, bounds, nbounds) < 0)
		return NULL;
	if ((labels = render_labels(name, type == FAM_HISTOGRAM, ap)) == NULL)
		return NULL;
	pthread_mutex_lock(&m->mu);
	if ((f = get_family(m, name, help, type, bounds, nbounds)) == NULL)
		goto out;
	for (s = f->series; s != NULL; s = s->next) {
		if (strcmp(s->labels, labels) != 0)
			continue;
		if (s->fn != fn || s->arg != arg) {
			log_warnx("metrics: %s{%s} registered twice with different sources", name,
			    labels);
			s = NULL;
		}
		goto out;
	}
	/* the allocation is the largest handle type, so any handle may point at it */
	if ((s = calloc(1, sizeof(struct upmon_histogram))) == NULL)
		goto out;
	if (type == FAM_HISTOGRAM &&
	    (s->buckets = calloc(nbounds + 1, sizeof(*s->buckets))) == NULL) {
		free(s);
		s = NULL;
		goto out;
	}
	s->fam = f;
	s->labels = labels;
	labels = NULL;
	s->fn = fn;
	s->arg = arg;
	*f->tail = s;
	f->tail = &s->next;
out:
	pthread_mutex_unlock(&m->mu);
	free(labels);
	return s;
}

struct upmon_counter *
upmon_metrics_counter(struct upmon_metrics *m, const char *name, const char *help, ...)
{
	struct series *s;
	va_list ap;

	va_start(ap, help);
	s = add_series(m, name, help, FAM_COUNTER, NULL, 0, NULL, NULL, ap);
	va_end(ap);
	return (struct upmon_counter *)s;
}

struct upmon_gauge *
upmon_metrics_gauge(struct upmon_metrics *m, const char *name, const char *help, ...)
{
	struct series *s;
	va_list ap;

	va_start(ap, help);
	s = add_series(m, name, help, FAM_GAUGE, NULL, 0, NULL, NULL, ap);
	va_end(ap);
	return (struct upmon_gauge *)s;
}

struct upmon_histogram *
upmon_metrics_histogram(struct upmon_metrics *m, const char *name, const char *help,
    const double *bounds, size_t nbounds, ...)
{
	struct series *s;
	va_list ap;

	va_start(ap, nbounds);
	s = add_series(m, name, help, FAM_HISTOGRAM, bounds, nbounds, NULL, NULL, ap);
	va_end(ap);
	return (struct upmon_histogram *)s;
}

int
upmon_metrics_callback(struct upmon_metrics *m, enum upmon_metric_type type,
    const char *name, const char *help, double (*fn)(void *arg), void *arg, ...)
{
	struct series *s;
	va_list ap;

	if (fn == NULL || (type != UPMON_METRIC_COUNTER && type != UPMON_METRIC_GAUGE))
		return -EINVAL;
	va_start(ap, arg);
	s = add_series(m, name, help, type == UPMON_METRIC_COUNTER ? FAM_COUNTER : FAM_GAUGE,
	    NULL, 0, fn, arg, ap);
	va_end(ap);
	return s != NULL ? 0 : -EINVAL;
}

/* ---- updates ---------------------------------------------------------------------------- */

static uint64_t
dbits(double v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof(u));
	return u;
}

static double
bitsd(uint64_t u)
{
	double v;

	memcpy(&v, &u, sizeof(v));
	return v;
}

static void
atomic_add_double(_Atomic uint64_t *a, double delta)
{
	uint64_t old = atomic_load_explicit(a, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(a, &old, dbits(bitsd(old) + delta),
	    memory_order_relaxed, memory_order_relaxed))
		;
}

void
upmon_counter_inc(struct upmon_counter *c)
{
	if (c != NULL)
		atomic_fetch_add_explicit(&c->s.value, 1, memory_order_relaxed);
}

void
upmon_counter_add(struct upmon_counter *c, uint64_t n)
{
	if (c != NULL)
		atomic_fetch_add_explicit(&c->s.value, n, memory_order_relaxed);
}

uint64_t
upmon_counter_get(const struct upmon_counter *c)
{
	return c != NULL ? atomic_load_explicit(&c->s.value, memory_order_relaxed) : 0;
}

void
upmon_gauge_set(struct upmon_gauge *g, double v)
{
	if (g != NULL)
		atomic_store_explicit(&g->s.value, dbits(v), memory_order_relaxed);
}

void
upmon_gauge_add(struct upmon_gauge *g, double delta)
{
	if (g != NULL)
		atomic_add_double(&g->s.value, delta);
}

double
upmon_gauge_get(const struct upmon_gauge *g)
{
	return g != NULL ? bitsd(atomic_load_explicit(&g->s.value, memory_order_relaxed)) : 0;
}

void
upmon_histogram_observe(struct upmon_histogram *h, double v)
{
	const struct family *f;
	size_t i;

	if (h == NULL || isnan(v))
		return;
	f = h->s.fam;
	for (i = 0; i < f->nbounds && v > f->bounds[i]; i++)
		;
	atomic_fetch_add_explicit(&h->s.buckets[i], 1, memory_order_relaxed);
	atomic_add_double(&h->s.sum, v);
}

/* ---- rendering -------------------------------------------------------------------------- */

/* Writes `name{labels}` or `name` (extra: one more rendered label, e.g. le="0.5"). */
static void
sample_name(struct mbuf *b, const char *name, const char *suffix, const char *labels,
    const char *extra)
{
	int has = labels[0] != '\0', more = extra != NULL;

	mbuf_printf(b, "%s%s", name, suffix);
	if (has || more)
		mbuf_printf(b, "{%s%s%s}", labels, has && more ? "," : "", more ? extra : "");
	mbuf_printf(b, " ");
}

static void
render_histogram(struct mbuf *b, const struct family *f, const struct series *s)
{
	uint64_t counts[MAX_BOUNDS + 1], cum = 0;
	char num[40], le[48];
	size_t i;

	/* one snapshot, so the buckets are cumulative and +Inf equals _count */
	for (i = 0; i <= f->nbounds; i++)
		counts[i] = atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
	for (i = 0; i <= f->nbounds; i++) {
		cum += counts[i];
		if (i < f->nbounds)
			format_double(f->bounds[i], num, sizeof(num));
		else
			snprintf(num, sizeof(num), "+Inf");
		snprintf(le, sizeof(le), "le=\"%s\"", num);
		sample_name(b, f->name, "_bucket", s->labels, le);
		mbuf_printf(b, "%" PRIu64 "\n", cum);
	}
	format_double(bitsd(atomic_load_explicit(&s->sum, memory_order_relaxed)), num,
	    sizeof(num));
	sample_name(b, f->name, "_sum", s->labels, NULL);
	mbuf_printf(b, "%s\n", num);
	sample_name(b, f->name, "_count", s->labels, NULL);
	mbuf_printf(b, "%" PRIu64 "\n", cum);
}

static void
render_family(struct mbuf *b, const struct family *f)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	const struct series *s;
	char num[40];

	mbuf_printf(b, "# HELP %s ", f->name);
	mbuf_escaped(b, f->help, 0);
	mbuf_printf(b, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
	for (s = f->series; s != NULL; s = s->next) {
		if (f->type == FAM_HISTOGRAM) {
			render_histogram(b, f, s);
			continue;
		}
		sample_name(b, f->name, "", s->labels, NULL);
		if (s->fn != NULL)
			format_double(s->fn(s->arg), num, sizeof(num));
		else if (f->type == FAM_COUNTER)
			snprintf(num, sizeof(num), "%" PRIu64,
			    atomic_load_explicit(&s->value, memory_order_relaxed));
		else
			format_double(bitsd(atomic_load_explicit(&s->value, memory_order_relaxed)),
			    num, sizeof(num));
		mbuf_printf(b, "%s\n", num);
	}
}

int
upmon_metrics_render(struct upmon_metrics *m, char **out, size_t *len)
{
	struct mbuf b = { 0 };
	const struct family *f;

	*out = NULL;
	mbuf_grow(&b, 4096);
	if (m != NULL) {
		pthread_mutex_lock(&m->mu);
		for (f = m->families; f != NULL && !b.oom; f = f->next)
			if (f->series != NULL)
				render_family(&b, f);
		pthread_mutex_unlock(&m->mu);
	}
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	b.p[b.len] = '\0';
	*out = b.p;
	if (len != NULL)
		*len = b.len;
	return 0;
}
