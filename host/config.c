/*
 * config.c -- INI files into a flat, line-numbered entry list (see config.h).
 *
 * inih does the parsing. We feed it through ini_parse_stream with our own
 * line reader, which counts lines (Debian's inih is built without line
 * numbers in the handler) and rejects a line longer than ARBH_INI_MAX_LINE
 * instead of letting inih split it silently.
 */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INCLUDE_DEPTH 16

typedef struct line_reader {
    FILE *file;       /* either a file ... */
    const char *text; /* ... or a string */
    size_t pos;
    int lineno;
    bool too_long;
    size_t long_len;
} line_reader;

typedef struct parse_state {
    arbh_config *cfg;
    const char *file; /* owned by cfg->files */
    line_reader *reader;
    int depth;
    bool failed;
} parse_state;

__attribute__((format(printf, 2, 3))) static void cfg_error(arbh_config *cfg, const char *fmt, ...)
{
    if (cfg->err[0])
        return; /* keep the first error: it is the cause */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cfg->err, sizeof cfg->err, fmt, ap);
    va_end(ap);
}

/* fgets-style: one whole line per call, so lineno is exact. A line longer
 * than the limit ends the parse (we return NULL) and is reported. */
static char *read_line(char *str, int num, void *stream)
{
    line_reader *r = stream;
    size_t n = 0, limit = ARBH_INI_MAX_LINE;
    int ch;
    if ((size_t)num - 1 < limit)
        limit = (size_t)num - 1;
    for (;;) {
        if (r->file) {
            ch = fgetc(r->file);
        } else {
            ch = r->text[r->pos] ? (unsigned char)r->text[r->pos++] : EOF;
        }
        if (ch == EOF) {
            if (n == 0)
                return NULL;
            break;
        }
        if (n < limit)
            str[n] = (char)ch;
        n++;
        if (ch == '\n')
            break;
    }
    r->lineno++;
    if (n > limit && !(n == limit + 1 && ch == '\n')) {
        r->too_long = true;
        r->long_len = n;
        return NULL;
    }
    str[n < limit ? n : limit] = 0;
    return str;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fputs("arb-host: out of memory\n", stderr);
        abort();
    }
    return d;
}

uint64_t arbh_str_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* The slot of section `name`: its number + 1, or the empty slot where it
 * would go. */
static uint32_t *sec_slot(const arbh_config *cfg, const char *name)
{
    size_t mask = cfg->sec_cap - 1;
    for (size_t i = arbh_str_hash(name) & mask;; i = (i + 1) & mask) {
        uint32_t *slot = &cfg->sec_slots[i];
        if (!*slot || !strcmp(cfg->secs[*slot - 1].name, name))
            return slot;
    }
}

static arbh_cfg_sec *sec_find(const arbh_config *cfg, const char *name)
{
    if (!cfg->sec_cap)
        return NULL;
    uint32_t slot = *sec_slot(cfg, name);
    return slot ? &cfg->secs[slot - 1] : NULL;
}

/* Section `name`, added (last in order) if new; NULL: out of memory. */
static arbh_cfg_sec *sec_get(arbh_config *cfg, const char *name)
{
    arbh_cfg_sec *s = sec_find(cfg, name);
    if (s)
        return s;
    if (2 * (cfg->nsecs + 1) > cfg->sec_cap) {
        size_t cap = cfg->sec_cap ? 2 * cfg->sec_cap : 64;
        uint32_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return NULL;
        free(cfg->sec_slots);
        cfg->sec_slots = slots;
        cfg->sec_cap = cap;
        for (size_t i = 0; i < cfg->nsecs; i++)
            *sec_slot(cfg, cfg->secs[i].name) = (uint32_t)i + 1;
    }
    if (cfg->nsecs == cfg->capsecs) {
        size_t cap = cfg->capsecs ? 2 * cfg->capsecs : 16;
        arbh_cfg_sec *grown = realloc(cfg->secs, cap * sizeof *grown);
        if (!grown)
            return NULL;
        cfg->secs = grown;
        cfg->capsecs = cap;
    }
    uint32_t *slot = sec_slot(cfg, name);
    s = &cfg->secs[cfg->nsecs];
    *s = (arbh_cfg_sec){.name = xstrdup(name)};
    if (!s->name)
        return NULL;
    *slot = (uint32_t)++cfg->nsecs;
    return s;
}

static int add_entry(arbh_config *cfg, const char *section, const char *key, const char *value,
                     const char *file, int line)
{
    if (cfg->count == cfg->cap) {
        size_t cap = cfg->cap ? cfg->cap * 2 : 64;
        arbh_cfg_entry *e = realloc(cfg->entries, cap * sizeof *e);
        if (!e)
            return -1;
        cfg->entries = e;
        cfg->cap = cap;
    }
    arbh_cfg_sec *s = sec_get(cfg, section);
    if (!s)
        return -1;
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? 2 * s->cap : 8;
        uint32_t *grown = realloc(s->idx, cap * sizeof *grown);
        if (!grown)
            return -1;
        s->idx = grown;
        s->cap = cap;
    }
    s->idx[s->n++] = (uint32_t)cfg->count;
    cfg->entries[cfg->count++] = (arbh_cfg_entry){
        .section = xstrdup(section),
        .key = xstrdup(key),
        .value = xstrdup(value),
        .file = file,
        .line = line,
    };
    return 0;
}

/* ${VAR} and ${VAR:-default}; "$$" is a literal '$'. */
static int expand_env(arbh_config *cfg, const char *file, int line, const char *in, char *out,
                      size_t cap)
{
    size_t o = 0;
    for (const char *p = in; *p;) {
        const char *piece = p;
        size_t plen = 1;
        char name[128];
        if (p[0] == '$' && p[1] == '$') {
            p += 2;
        } else if (p[0] == '$' && p[1] == '{') {
            const char *close = strchr(p, '}');
            if (!close) {
                cfg_error(cfg, "%s:%d: unterminated ${ in value", file, line);
                return -1;
            }
            const char *body = p + 2;
            const char *dflt = strstr(body, ":-");
            const char *name_end = dflt && dflt < close ? dflt : close;
            size_t nlen = (size_t)(name_end - body);
            if (nlen == 0 || nlen >= sizeof name) {
                cfg_error(cfg, "%s:%d: bad variable name in ${...}", file, line);
                return -1;
            }
            memcpy(name, body, nlen);
            name[nlen] = 0;
            const char *val = getenv(name);
            if (val && *val) {
                piece = val;
                plen = strlen(val);
            } else if (dflt && dflt < close) {
                piece = dflt + 2;
                plen = (size_t)(close - piece);
            } else if (cfg->unset_env_empty) {
                piece = close;
                plen = 0;
            } else {
                cfg_error(cfg, "%s:%d: environment variable %s is not set (use ${%s:-default})",
                          file, line, name, name);
                return -1;
            }
            p = close + 1;
        } else {
            p++;
        }
        if (o + plen >= cap) {
            cfg_error(cfg, "%s:%d: value too long after expansion", file, line);
            return -1;
        }
        memcpy(out + o, piece, plen);
        o += plen;
    }
    out[o] = 0;
    return 0;
}

static int parse_file(arbh_config *cfg, const char *path, int depth);

/* The entry a file set for section/key, if any (no entry is marked used). */
static const arbh_cfg_entry *find_entry(const arbh_config *cfg, const char *section,
                                        const char *key);

static int on_entry(void *user, const char *section, const char *key, const char *value)
{
    parse_state *st = user;
    arbh_config *cfg = st->cfg;
    int line = st->reader->lineno;
    char expanded[ARBH_INI_MAX_LINE * 2];
    if (st->failed)
        return 0;
    if (expand_env(cfg, st->file, line, value, expanded, sizeof expanded) != 0) {
        st->failed = true;
        return 0;
    }
    if (!strcmp(key, "include")) {
        char resolved[sizeof expanded + 4096 + 2];
        if (expanded[0] == '/') {
            snprintf(resolved, sizeof resolved, "%s", expanded);
        } else {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s", st->file);
            snprintf(resolved, sizeof resolved, "%s/%s", dirname(dir), expanded);
        }
        if (st->depth + 1 > MAX_INCLUDE_DEPTH) {
            cfg_error(cfg, "%s:%d: includes nested deeper than %d (a cycle?)", st->file, line,
                      MAX_INCLUDE_DEPTH);
            st->failed = true;
            return 0;
        }
        if (parse_file(cfg, resolved, st->depth + 1) != 0) {
            if (!cfg->err[0] || strncmp(cfg->err, resolved, strlen(resolved)))
                cfg_error(cfg, "%s:%d: in file included from here", st->file, line);
            st->failed = true;
            return 0;
        }
        return 1;
    }
    if (!section[0]) {
        cfg_error(cfg, "%s:%d: key '%s' outside any [section]", st->file, line, key);
        st->failed = true;
        return 0;
    }
    /* A key set twice from files would silently merge two settings (a
     * second [plugin x] appended to agents.ini with its own `account`
     * becoming the first one's): refused, naming both places. A section
     * opened again with other keys is fine; -s overrides come later and
     * replace on purpose. */
    const arbh_cfg_entry *prev = cfg->refuse_duplicates ? find_entry(cfg, section, key) : NULL;
    if (prev) {
        /* Same line of a file of the same name: one file read twice (two
         * configs that both include instruments.ini, given together). */
        const char *b1 = strrchr(prev->file, '/'), *b2 = strrchr(st->file, '/');
        bool twice =
            prev->line == line && !strcmp(b1 ? b1 + 1 : prev->file, b2 ? b2 + 1 : st->file);
        cfg_error(cfg, "%s:%d: `%s` in [%s] is already set at %s:%d%s", st->file, line, key,
                  section, prev->file, prev->line, twice ? " (is the file read twice?)" : "");
        st->failed = true;
        return 0;
    }
    if (add_entry(cfg, section, key, expanded, st->file, line) != 0) {
        cfg_error(cfg, "%s:%d: out of memory", st->file, line);
        st->failed = true;
        return 0;
    }
    return 1;
}

static int parse_reader(arbh_config *cfg, const char *name, line_reader *r, int depth)
{
    char **files = realloc(cfg->files, (cfg->nfiles + 1) * sizeof *files);
    if (!files)
        return -1;
    cfg->files = files;
    cfg->files[cfg->nfiles] = xstrdup(name);
    parse_state st = {cfg, cfg->files[cfg->nfiles++], r, depth, false};

    /* Debian's inih reads lines into a 200-byte buffer unless told otherwise:
     * give it one buffer of our limit (+3 for CR, LF, NUL) up front. */
    ini_allow_multiline = false;
    ini_use_stack = false;
    ini_max_line = ARBH_INI_MAX_LINE + 3;
    ini_initial_alloc = ARBH_INI_MAX_LINE + 3;
    ini_allow_inline_comments = true;

    int rc = ini_parse_stream(read_line, r, on_entry, &st);
    if (r->too_long) {
        cfg_error(cfg, "%s:%d: line is %zu characters long; the limit is %d", st.file, r->lineno,
                  r->long_len, ARBH_INI_MAX_LINE);
        return -1;
    }
    if (st.failed)
        return -1;
    if (rc > 0) {
        cfg_error(cfg, "%s:%d: syntax error (expected [section] or key = value)", st.file, rc);
        return -1;
    }
    if (rc < 0) {
        cfg_error(cfg, "%s: cannot parse (%s)", st.file, rc == -2 ? "out of memory" : "I/O");
        return -1;
    }
    return 0;
}

static int parse_file(arbh_config *cfg, const char *path, int depth)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cfg_error(cfg, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    line_reader r = {.file = f};
    int rc = parse_reader(cfg, path, &r, depth);
    fclose(f);
    return rc;
}

/* "clock.ticks=5": the section is "clock" if such a section exists, else
 * "plugin clock" if that exists, else "clock" (e.g. "host.admin=..."). */
static int apply_override(arbh_config *cfg, const char *ov)
{
    const char *dot = strchr(ov, '.');
    const char *eq = strchr(ov, '=');
    if (!dot || !eq || dot > eq || dot == ov || eq == dot + 1) {
        cfg_error(cfg, "-s %s: expected section.key=value", ov);
        return -1;
    }
    char section[256], key[256], plugin_section[300];
    size_t slen = (size_t)(dot - ov), klen = (size_t)(eq - dot - 1);
    if (slen >= sizeof section || klen >= sizeof key) {
        cfg_error(cfg, "-s %s: section or key too long", ov);
        return -1;
    }
    memcpy(section, ov, slen);
    section[slen] = 0;
    memcpy(key, dot + 1, klen);
    key[klen] = 0;
    snprintf(plugin_section, sizeof plugin_section, "plugin %s", section);
    const char *target = section;
    if (!arbh_config_has_section(cfg, section) && arbh_config_has_section(cfg, plugin_section))
        target = plugin_section;
    return add_entry(cfg, target, key, eq + 1, "<command line>", 0);
}

static int apply_overrides(arbh_config *cfg, const char *const *ovs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (apply_override(cfg, ovs[i]) != 0)
            return -1;
    return 0;
}

int arbh_config_load(arbh_config *cfg, const char *const *files, size_t nfiles,
                     const char *const *overrides, size_t noverrides)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->refuse_duplicates = true;
    for (size_t i = 0; i < nfiles; i++)
        if (parse_file(cfg, files[i], 0) != 0)
            return -1;
    return apply_overrides(cfg, overrides, noverrides);
}

int arbh_config_load_lenient(arbh_config *cfg, const char *const *files, size_t nfiles)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->unset_env_empty = true;
    for (size_t i = 0; i < nfiles; i++)
        if (parse_file(cfg, files[i], 0) != 0)
            return -1;
    return 0;
}

int arbh_config_load_string(arbh_config *cfg, const char *name, const char *text,
                            const char *const *overrides, size_t noverrides)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->refuse_duplicates = true;
    line_reader r = {.text = text};
    if (parse_reader(cfg, name, &r, 0) != 0)
        return -1;
    return apply_overrides(cfg, overrides, noverrides);
}

void arbh_config_free(arbh_config *cfg)
{
    for (size_t i = 0; i < cfg->count; i++) {
        free(cfg->entries[i].section);
        free(cfg->entries[i].key);
        free(cfg->entries[i].value);
    }
    for (size_t i = 0; i < cfg->nfiles; i++)
        free(cfg->files[i]);
    free(cfg->entries);
    free(cfg->files);
    for (size_t i = 0; i < cfg->nsecs; i++) {
        free(cfg->secs[i].name);
        free(cfg->secs[i].idx);
    }
    free(cfg->secs);
    free(cfg->sec_slots);
    memset(cfg, 0, sizeof *cfg);
}

static const arbh_cfg_entry *find_entry(const arbh_config *cfg, const char *section,
                                        const char *key)
{
    const arbh_cfg_sec *s = sec_find(cfg, section);
    for (uint32_t j = 0; s && j < s->n; j++)
        if (!strcmp(cfg->entries[s->idx[j]].key, key))
            return &cfg->entries[s->idx[j]];
    return NULL;
}

arbh_cfg_entry *arbh_config_find(arbh_config *cfg, const char *section, const char *key)
{
    arbh_cfg_entry *found = NULL;
    const arbh_cfg_sec *s = sec_find(cfg, section);
    for (uint32_t j = 0; s && j < s->n; j++) {
        arbh_cfg_entry *e = &cfg->entries[s->idx[j]];
        e->section_seen = true;
        if (!strcmp(e->key, key)) {
            e->used = true;
            found = e;
        }
    }
    return found;
}

const arbh_cfg_entry *arbh_config_first_unread(const arbh_config *cfg, bool *whole_section)
{
    for (size_t i = 0; i < cfg->count; i++) {
        const arbh_cfg_entry *e = &cfg->entries[i];
        if (e->used || !strcmp(e->section, "kafka") || !strncmp(e->section, "kafka.", 6))
            continue;
        if (e->section_seen) {
            *whole_section = false;
            return e;
        }
        if (strncmp(e->section, "instrument ", 11)) {
            *whole_section = true;
            return e;
        }
    }
    return NULL;
}

const char *arbh_config_get(arbh_config *cfg, const char *section, const char *key, const char *def)
{
    arbh_cfg_entry *e = arbh_config_find(cfg, section, key);
    return e ? e->value : def;
}

bool arbh_config_has_section(const arbh_config *cfg, const char *section)
{
    return arbh_config_section_origin(cfg, section) != NULL;
}

const arbh_cfg_entry *arbh_config_section_origin(const arbh_config *cfg, const char *section)
{
    const arbh_cfg_sec *s = sec_find(cfg, section);
    return s ? &cfg->entries[s->idx[0]] : NULL;
}

/* The last entry of section s with key (the one in effect), from j on. */
static arbh_cfg_entry *last_with_key(const arbh_config *cfg, const arbh_cfg_sec *s, uint32_t j,
                                     const char *key)
{
    arbh_cfg_entry *eff = NULL;
    for (; s && j < s->n; j++)
        if (!strcmp(cfg->entries[s->idx[j]].key, key))
            eff = &cfg->entries[s->idx[j]];
    return eff;
}

int arbh_config_each(arbh_config *cfg, const char *section,
                     int (*fn)(void *user, const arbh_cfg_entry *e), void *user)
{
    const arbh_cfg_sec *s = sec_find(cfg, section);
    for (uint32_t j = 0; s && j < s->n; j++) {
        arbh_cfg_entry *e = &cfg->entries[s->idx[j]];
        bool earlier = false;
        for (uint32_t k = 0; k < j && !earlier; k++)
            earlier = !strcmp(cfg->entries[s->idx[k]].key, e->key);
        if (earlier)
            continue;
        /* The key's last definition, not marked used: a key counts as
         * known only once its reader looks it up (arbh_config_find). */
        arbh_cfg_entry *eff = last_with_key(cfg, s, j, e->key);
        e->section_seen = true;
        int rc = fn(user, eff);
        if (rc)
            return rc;
    }
    return 0;
}

int arbh_config_sections(arbh_config *cfg, const char *prefix,
                         int (*fn)(void *user, const char *section), void *user)
{
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < cfg->nsecs; i++) {
        const arbh_cfg_sec *s = &cfg->secs[i];
        if (strncmp(s->name, prefix, plen))
            continue;
        for (uint32_t j = 0; j < s->n; j++)
            cfg->entries[s->idx[j]].section_seen = true;
        int rc = fn(user, s->name);
        if (rc)
            return rc;
    }
    return 0;
}

bool arbh_config_section_equal(arbh_config *a, arbh_config *b, const char *section)
{
    /* Effective values: compare each key's last value both ways. */
    for (int pass = 0; pass < 2; pass++) {
        arbh_config *x = pass ? b : a, *y = pass ? a : b;
        const arbh_cfg_sec *sx = sec_find(x, section), *sy = sec_find(y, section);
        for (uint32_t j = 0; sx && j < sx->n; j++) {
            const char *key = x->entries[sx->idx[j]].key;
            const arbh_cfg_entry *ex = last_with_key(x, sx, j, key),
                                 *ey = last_with_key(y, sy, 0, key);
            if (!ey || strcmp(ex->value, ey->value))
                return false;
        }
    }
    return true;
}

void arbh_config_mark_section(arbh_config *cfg, const char *section)
{
    const arbh_cfg_sec *s = sec_find(cfg, section);
    for (uint32_t j = 0; s && j < s->n; j++)
        cfg->entries[s->idx[j]].used = cfg->entries[s->idx[j]].section_seen = true;
}
