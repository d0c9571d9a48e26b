/*
 * config.h -- the host's view of its INI configuration.
 *
 * Files are parsed with inih into a flat list of entries, each remembering
 * the file and line it came from, so every error can name them. `include =`
 * pulls in another file at that point, `${VAR}` and `${VAR:-default}` are
 * expanded in values, and command-line overrides (-s section.key=value) are
 * appended last so they win. A section may be opened again (in one file or
 * across includes) to add keys, but a key set twice from files is an error
 * naming both places: overrides are the one way to replace a value. Lookups mark entries as used: after plugins
 * have read their sections, an unused key is an unknown key.
 * Not here: what the keys mean (host.c) or typed parsing for plugins (api.c).
 */
#ifndef ARBH_CONFIG_H
#define ARBH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARBH_INI_MAX_LINE 4096

typedef struct arbh_cfg_entry {
    char *section;
    char *key;
    char *value;
    const char *file; /* owned by the config's file list */
    int line;
    bool used;
    bool section_seen; /* some lookup touched this entry's section */
} arbh_cfg_entry;

/* A section's entries, in file order (config.c). */
typedef struct arbh_cfg_sec {
    char *name;
    uint32_t *idx; /* into entries */
    uint32_t n, cap;
} arbh_cfg_sec;

typedef struct arbh_config {
    arbh_cfg_entry *entries;
    size_t count, cap;
    char **files; /* every file read, for error messages and SIGHUP */
    size_t nfiles;
    char err[512];
    /* arbctl reads a config only for addresses: an unset ${VAR} (a split
     * config's ${ARB_BROKERS}) expands to "" there instead of failing. */
    bool unset_env_empty;
    /* A key set twice in a section from files is an error (arb-host's
     * loads); arbctl's lenient load lets the last one win, so that
     * `arbctl -c FILE` still reaches a running host after a bad edit and
     * the host's refusal of it is what the user sees. */
    bool refuse_duplicates;
    /* The sections in the order they first appear, and a hash of their
     * names (section number + 1, open addressing): every lookup reads one
     * section, not the whole file. Scans of every entry made a plugin that
     * reads 10,000 instrument sections take minutes. */
    arbh_cfg_sec *secs;
    size_t nsecs, capsecs;
    uint32_t *sec_slots;
    size_t sec_cap;
} arbh_config;

/* Reads files in order, then applies overrides ("section.key=value"; the
 * section may name an instance: "clock.ticks=5" means [plugin clock]).
 * Returns 0, or -1 with cfg->err set to "file:line: what is wrong"; a key
 * the files set twice in one section is "file:line: `key` in [section] is
 * already set at file:line". */
int arbh_config_load(arbh_config *cfg, const char *const *files, size_t nfiles,
                     const char *const *overrides, size_t noverrides);
/* As arbh_config_load, but an unset ${VAR} without a default expands to ""
 * rather than failing: for tools that read a config for its addresses. */
int arbh_config_load_lenient(arbh_config *cfg, const char *const *files, size_t nfiles);
/* Parses INI text as if it were a file named `name` (tests). */
int arbh_config_load_string(arbh_config *cfg, const char *name, const char *text,
                            const char *const *overrides, size_t noverrides);
void arbh_config_free(arbh_config *cfg);

/* The last entry for section/key (an override replaces the file's), or NULL.
 * Marks every entry of that section/key as used. */
arbh_cfg_entry *arbh_config_find(arbh_config *cfg, const char *section, const char *key);
const char *arbh_config_get(arbh_config *cfg, const char *section, const char *key,
                            const char *def);
bool arbh_config_has_section(const arbh_config *cfg, const char *section);

/* Every distinct key of a section in first-appearance order, effective
 * values. fn returns non-zero to stop. */
int arbh_config_each(arbh_config *cfg, const char *section,
                     int (*fn)(void *user, const arbh_cfg_entry *e), void *user);
/* Every distinct section (first-appearance order) starting with prefix. */
int arbh_config_sections(arbh_config *cfg, const char *prefix,
                         int (*fn)(void *user, const char *section), void *user);
/* Where a section begins (its first entry), for messages about a section. */
const arbh_cfg_entry *arbh_config_section_origin(const arbh_config *cfg, const char *section);

/* The first entry nobody read, in a section that was read (an unknown key),
 * or in a section nobody read that is not an instrument (an unknown section). */
const arbh_cfg_entry *arbh_config_first_unread(const arbh_config *cfg, bool *whole_section);

/* True if both configs give a section the same effective keys and values. */
bool arbh_config_section_equal(arbh_config *a, arbh_config *b, const char *section);
/* FNV-1a of a string: the config's section index, an instance's set of
 * sections read (instance.c). */
uint64_t arbh_str_hash(const char *s);
/* Marks every entry of section as read (used and section_seen). */
void arbh_config_mark_section(arbh_config *cfg, const char *section);

#endif
