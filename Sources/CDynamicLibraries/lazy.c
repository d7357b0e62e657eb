#define _GNU_SOURCE
// sd_journal_sendv is our lazily resolved function, not sd-journal.h's location-adding macro.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include "CDynamicLibraries.h"

#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <sys/uio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-id128.h>
#include <systemd/sd-journal.h>
#include <yaml.h>

/// A library opened on first use; `handle` is published once, racing openers get the
/// same handle from the dynamic loader.
struct library {
    const char *soname;
    const char *package;
    void *handle;
};

static struct library systemd_library = {"libsystemd.so.0", "libsystemd0", NULL};
static struct library yaml_library = {"libyaml-0.so.2", "libyaml-0-2", NULL};
static struct library archive_library = {"libarchive.so.13", "libarchive13", NULL};
static struct library pcre2_library = {"libpcre2-8.so.0", "libpcre2-8-0", NULL};

void *coreos_library_symbol(const char *soname, const char *symbol) {
    void *handle = dlopen(soname, RTLD_NOW | RTLD_GLOBAL);
    return handle ? dlsym(handle, symbol) : NULL;
}

static void *resolve(struct library *library, const char *symbol) {
    void *handle = __atomic_load_n(&library->handle, __ATOMIC_ACQUIRE);
    if (!handle) {
        handle = dlopen(library->soname, RTLD_NOW | RTLD_GLOBAL);
        if (!handle) {
            fprintf(stderr, "coreos: cannot load %s (Debian package %s): %s\n", library->soname, library->package,
                    dlerror());
            exit(127);
        }
        __atomic_store_n(&library->handle, handle, __ATOMIC_RELEASE);
    }
    void *function = dlsym(handle, symbol);
    if (!function) {
        fprintf(stderr, "coreos: %s has no %s (too old?): %s\n", library->soname, symbol, dlerror());
        exit(127);
    }
    return function;
}

// One definition per function: resolve once, then call through the cached pointer.
#define RESOLVE_ONCE(library, name, function_type)                                        \
    static function_type cached;                                                          \
    function_type function = __atomic_load_n(&cached, __ATOMIC_ACQUIRE);                  \
    if (!function) {                                                                      \
        function = (function_type)resolve(&library, #name);                               \
        __atomic_store_n(&cached, function, __ATOMIC_RELEASE);                            \
    }
#define LAZY(library, result, name, parameters, arguments)                                \
    result name parameters {                                                              \
        typedef result(*function_type) parameters;                                        \
        RESOLVE_ONCE(library, name, function_type)                                        \
        return function arguments;                                                        \
    }
#define LAZY_VOID(library, name, parameters, arguments)                                   \
    void name parameters {                                                                \
        typedef void(*function_type) parameters;                                          \
        RESOLVE_ONCE(library, name, function_type)                                        \
        function arguments;                                                               \
    }

// libsystemd
LAZY(systemd_library, int, sd_booted, (void), ())
LAZY(systemd_library, int, sd_id128_randomize, (sd_id128_t *ret), (ret))

// libsystemd: sd-journal, for coreos journal
LAZY(systemd_library, int, sd_id128_get_boot, (sd_id128_t *ret), (ret))
LAZY(systemd_library, int, sd_journal_open, (sd_journal **ret, int flags), (ret, flags))
LAZY(systemd_library, int, sd_journal_open_directory, (sd_journal **ret, const char *path, int flags), (ret, path, flags))
LAZY(systemd_library, int, sd_journal_open_files, (sd_journal **ret, const char **paths, int flags), (ret, paths, flags))
LAZY_VOID(systemd_library, sd_journal_close, (sd_journal *j), (j))
LAZY(systemd_library, int, sd_journal_next, (sd_journal *j), (j))
LAZY(systemd_library, int, sd_journal_previous, (sd_journal *j), (j))
LAZY(systemd_library, int, sd_journal_next_skip, (sd_journal *j, uint64_t skip), (j, skip))
LAZY(systemd_library, int, sd_journal_previous_skip, (sd_journal *j, uint64_t skip), (j, skip))
LAZY(systemd_library, int, sd_journal_get_realtime_usec, (sd_journal *j, uint64_t *ret), (j, ret))
LAZY(systemd_library, int, sd_journal_get_monotonic_usec, (sd_journal *j, uint64_t *ret, sd_id128_t *ret_boot_id),
     (j, ret, ret_boot_id))
LAZY(systemd_library, int, sd_journal_set_data_threshold, (sd_journal *j, size_t sz), (j, sz))
LAZY(systemd_library, int, sd_journal_get_data, (sd_journal *j, const char *field, const void **data, size_t *l),
     (j, field, data, l))
LAZY(systemd_library, int, sd_journal_enumerate_data, (sd_journal *j, const void **data, size_t *l), (j, data, l))
LAZY_VOID(systemd_library, sd_journal_restart_data, (sd_journal *j), (j))
LAZY(systemd_library, int, sd_journal_add_match, (sd_journal *j, const void *data, size_t size), (j, data, size))
LAZY(systemd_library, int, sd_journal_add_disjunction, (sd_journal *j), (j))
LAZY(systemd_library, int, sd_journal_add_conjunction, (sd_journal *j), (j))
LAZY_VOID(systemd_library, sd_journal_flush_matches, (sd_journal *j), (j))
LAZY(systemd_library, int, sd_journal_seek_head, (sd_journal *j), (j))
LAZY(systemd_library, int, sd_journal_seek_tail, (sd_journal *j), (j))
LAZY(systemd_library, int, sd_journal_seek_realtime_usec, (sd_journal *j, uint64_t usec), (j, usec))
LAZY(systemd_library, int, sd_journal_seek_monotonic_usec, (sd_journal *j, sd_id128_t boot_id, uint64_t usec),
     (j, boot_id, usec))
LAZY(systemd_library, int, sd_journal_seek_cursor, (sd_journal *j, const char *cursor), (j, cursor))
LAZY(systemd_library, int, sd_journal_get_cursor, (sd_journal *j, char **cursor), (j, cursor))
LAZY(systemd_library, int, sd_journal_test_cursor, (sd_journal *j, const char *cursor), (j, cursor))
LAZY(systemd_library, int, sd_journal_get_cutoff_realtime_usec, (sd_journal *j, uint64_t *from, uint64_t *to), (j, from, to))
LAZY(systemd_library, int, sd_journal_get_usage, (sd_journal *j, uint64_t *bytes), (j, bytes))
LAZY(systemd_library, int, sd_journal_query_unique, (sd_journal *j, const char *field), (j, field))
LAZY(systemd_library, int, sd_journal_enumerate_unique, (sd_journal *j, const void **data, size_t *l), (j, data, l))
LAZY_VOID(systemd_library, sd_journal_restart_unique, (sd_journal *j), (j))
LAZY(systemd_library, int, sd_journal_enumerate_fields, (sd_journal *j, const char **field), (j, field))
LAZY_VOID(systemd_library, sd_journal_restart_fields, (sd_journal *j), (j))
LAZY(systemd_library, int, sd_journal_wait, (sd_journal *j, uint64_t timeout_usec), (j, timeout_usec))
LAZY(systemd_library, int, sd_journal_process, (sd_journal *j), (j))
LAZY(systemd_library, int, sd_journal_get_catalog, (sd_journal *j, char **text), (j, text))
// Writing: the embedded supervisor's unit output (native protocol; sd_journal_send is variadic).
LAZY(systemd_library, int, sd_journal_sendv, (const struct iovec *iov, int n), (iov, n))

// sd-bus: only the non-variadic calls (a variadic function cannot be forwarded).
LAZY(systemd_library, int, sd_bus_open_system, (sd_bus **ret), (ret))
LAZY(systemd_library, sd_bus *, sd_bus_flush_close_unref, (sd_bus *bus), (bus))
LAZY(systemd_library, int, sd_bus_message_new_method_call,
     (sd_bus *bus, sd_bus_message **m, const char *destination, const char *path, const char *interface,
      const char *member),
     (bus, m, destination, path, interface, member))
LAZY(systemd_library, int, sd_bus_message_append_basic, (sd_bus_message *m, char type, const void *p), (m, type, p))
LAZY(systemd_library, int, sd_bus_call,
     (sd_bus *bus, sd_bus_message *m, uint64_t usec, sd_bus_error *ret_error, sd_bus_message **reply),
     (bus, m, usec, ret_error, reply))
LAZY(systemd_library, sd_bus_message *, sd_bus_message_unref, (sd_bus_message *m), (m))
LAZY_VOID(systemd_library, sd_bus_error_free, (sd_bus_error *e), (e))
LAZY(systemd_library, int, sd_bus_message_append_strv, (sd_bus_message *m, char **l), (m, l))
LAZY(systemd_library, int, sd_bus_message_enter_container, (sd_bus_message *m, char type, const char *contents),
     (m, type, contents))
LAZY(systemd_library, int, sd_bus_message_exit_container, (sd_bus_message *m), (m))
LAZY(systemd_library, int, sd_bus_message_read_basic, (sd_bus_message *m, char type, void *p), (m, type, p))
LAZY(systemd_library, int, sd_bus_message_skip, (sd_bus_message *m, const char *types), (m, types))
LAZY(systemd_library, const char *, sd_bus_message_get_path, (sd_bus_message *m), (m))
LAZY(systemd_library, int, sd_bus_add_match,
     (sd_bus *bus, sd_bus_slot **slot, const char *match, sd_bus_message_handler_t callback, void *userdata),
     (bus, slot, match, callback, userdata))
LAZY(systemd_library, int, sd_bus_process, (sd_bus *bus, sd_bus_message **r), (bus, r))
LAZY(systemd_library, int, sd_bus_get_fd, (sd_bus *bus), (bus))
LAZY(systemd_library, int, sd_bus_get_events, (sd_bus *bus), (bus))
LAZY(systemd_library, int, sd_bus_get_timeout, (sd_bus *bus, uint64_t *timeout_usec), (bus, timeout_usec))

// libyaml
LAZY(yaml_library, const char *, yaml_get_version_string, (void), ())
LAZY(yaml_library, int, yaml_parser_initialize, (yaml_parser_t *parser), (parser))
LAZY_VOID(yaml_library, yaml_parser_delete, (yaml_parser_t *parser), (parser))
LAZY_VOID(yaml_library, yaml_parser_set_input_string, (yaml_parser_t *parser, const unsigned char *input, size_t size),
          (parser, input, size))
LAZY(yaml_library, int, yaml_parser_parse, (yaml_parser_t *parser, yaml_event_t *event), (parser, event))
LAZY_VOID(yaml_library, yaml_event_delete, (yaml_event_t *event), (event))

// libarchive
LAZY(archive_library, int, archive_version_number, (void), ())
LAZY(archive_library, const char *, archive_version_string, (void), ())
LAZY(archive_library, const char *, archive_version_details, (void), ())
LAZY(archive_library, struct archive *, archive_read_new, (void), ())
LAZY(archive_library, int, archive_read_support_format_all, (struct archive *a), (a))
LAZY(archive_library, int, archive_read_open_memory, (struct archive *a, const void *buffer, size_t size), (a, buffer, size))
LAZY(archive_library, int, archive_read_next_header, (struct archive *a, struct archive_entry **entry), (a, entry))
LAZY(archive_library, la_ssize_t, archive_read_data, (struct archive *a, void *buffer, size_t size), (a, buffer, size))
LAZY(archive_library, int, archive_read_free, (struct archive *a), (a))
LAZY(archive_library, struct archive *, archive_write_new, (void), ())
LAZY(archive_library, int, archive_write_set_format_pax_restricted, (struct archive *a), (a))
LAZY(archive_library, int, archive_write_open_memory, (struct archive *a, void *buffer, size_t size, size_t *used),
     (a, buffer, size, used))
LAZY(archive_library, int, archive_write_header, (struct archive *a, struct archive_entry *entry), (a, entry))
LAZY(archive_library, la_ssize_t, archive_write_data, (struct archive *a, const void *buffer, size_t size), (a, buffer, size))
LAZY(archive_library, int, archive_write_close, (struct archive *a), (a))
LAZY(archive_library, int, archive_write_free, (struct archive *a), (a))
LAZY(archive_library, struct archive_entry *, archive_entry_new, (void), ())
LAZY_VOID(archive_library, archive_entry_free, (struct archive_entry *entry), (entry))
LAZY(archive_library, const char *, archive_entry_pathname, (struct archive_entry *entry), (entry))
LAZY_VOID(archive_library, archive_entry_set_pathname, (struct archive_entry *entry, const char *path), (entry, path))
LAZY_VOID(archive_library, archive_entry_set_filetype, (struct archive_entry *entry, unsigned int type), (entry, type))
LAZY_VOID(archive_library, archive_entry_set_perm, (struct archive_entry *entry, __LA_MODE_T mode), (entry, mode))
LAZY_VOID(archive_library, archive_entry_set_size, (struct archive_entry *entry, la_int64_t size), (entry, size))
LAZY(archive_library, int, archive_read_support_filter_all, (struct archive *a), (a))
LAZY(archive_library, int, archive_read_support_format_tar, (struct archive *a), (a))
LAZY(archive_library, int, archive_read_support_format_raw, (struct archive *a), (a))
LAZY(archive_library, int, archive_read_open,
     (struct archive *a, void *client_data, archive_open_callback *open, archive_read_callback *read,
      archive_close_callback *close),
     (a, client_data, open, read, close))
LAZY(archive_library, int, archive_read_data_block,
     (struct archive *a, const void **buffer, size_t *size, la_int64_t *offset), (a, buffer, size, offset))
LAZY(archive_library, int, archive_read_data_skip, (struct archive *a), (a))
LAZY(archive_library, const char *, archive_error_string, (struct archive *a), (a))
LAZY(archive_library, int, archive_filter_count, (struct archive *a), (a))
LAZY(archive_library, int, archive_filter_code, (struct archive *a, int index), (a, index))
LAZY(archive_library, __LA_MODE_T, archive_entry_filetype, (struct archive_entry *entry), (entry))
LAZY(archive_library, __LA_MODE_T, archive_entry_perm, (struct archive_entry *entry), (entry))
LAZY(archive_library, la_int64_t, archive_entry_uid, (struct archive_entry *entry), (entry))
LAZY(archive_library, la_int64_t, archive_entry_gid, (struct archive_entry *entry), (entry))
LAZY(archive_library, time_t, archive_entry_mtime, (struct archive_entry *entry), (entry))
LAZY(archive_library, long, archive_entry_mtime_nsec, (struct archive_entry *entry), (entry))
LAZY(archive_library, la_int64_t, archive_entry_size, (struct archive_entry *entry), (entry))
LAZY(archive_library, const char *, archive_entry_symlink, (struct archive_entry *entry), (entry))
LAZY(archive_library, const char *, archive_entry_hardlink, (struct archive_entry *entry), (entry))
LAZY(archive_library, dev_t, archive_entry_rdevmajor, (struct archive_entry *entry), (entry))
LAZY(archive_library, dev_t, archive_entry_rdevminor, (struct archive_entry *entry), (entry))
LAZY(archive_library, int, archive_entry_xattr_reset, (struct archive_entry *entry), (entry))
LAZY(archive_library, int, archive_entry_xattr_next,
     (struct archive_entry *entry, const char **name, const void **value, size_t *size), (entry, name, value, size))
LAZY(archive_library, int, archive_entry_sparse_count, (struct archive_entry *entry), (entry))

// libpcre2-8, declared here (its -dev headers are not needed for four calls). The
// constants are PCRE2's ABI: PCRE2_CASELESS, PCRE2_UTF, PCRE2_ERROR_NOMATCH.
#define COREOS_PCRE2_CASELESS 0x00000008u
#define COREOS_PCRE2_UTF 0x00080000u
#define COREOS_PCRE2_ERROR_NOMATCH (-1)

struct coreos_regex {
    void *code;
    void *match_data;
};

typedef void *(*pcre2_compile_type)(const unsigned char *, size_t, uint32_t, int *, size_t *, void *);
typedef int (*pcre2_get_error_message_type)(int, unsigned char *, size_t);
typedef void *(*pcre2_match_data_create_from_pattern_type)(const void *, void *);
typedef int (*pcre2_match_type)(const void *, const unsigned char *, size_t, size_t, uint32_t, void *, void *);
typedef void (*pcre2_free_type)(void *);

coreos_regex *coreos_regex_compile(const char *pattern, size_t length, int caseless, char *error, size_t error_size) {
    pcre2_compile_type compile = (pcre2_compile_type)resolve(&pcre2_library, "pcre2_compile_8");
    int code = 0;
    size_t offset = 0;
    void *compiled = compile((const unsigned char *)pattern, length, COREOS_PCRE2_UTF | (caseless ? COREOS_PCRE2_CASELESS : 0),
                             &code, &offset, NULL);
    if (!compiled) {
        pcre2_get_error_message_type message = (pcre2_get_error_message_type)resolve(&pcre2_library, "pcre2_get_error_message_8");
        if (message((int)code, (unsigned char *)error, error_size) < 0 && error_size > 0) error[0] = 0;
        return NULL;
    }
    pcre2_match_data_create_from_pattern_type create =
        (pcre2_match_data_create_from_pattern_type)resolve(&pcre2_library, "pcre2_match_data_create_from_pattern_8");
    coreos_regex *regex = malloc(sizeof(coreos_regex));
    if (!regex) return NULL;
    regex->code = compiled;
    regex->match_data = create(compiled, NULL);
    return regex;
}

typedef size_t *(*pcre2_get_ovector_pointer_type)(void *);

int coreos_regex_match(coreos_regex *regex, const void *subject, size_t length, size_t *start, size_t *end) {
    RESOLVE_ONCE(pcre2_library, pcre2_match_8, pcre2_match_type)
    int result = function(regex->code, (const unsigned char *)subject, length, 0, 0, regex->match_data, NULL);
    if (result == COREOS_PCRE2_ERROR_NOMATCH) return 0;
    if (result < 0) return result;
    if (start || end) {
        size_t *ovector = ((pcre2_get_ovector_pointer_type)resolve(&pcre2_library, "pcre2_get_ovector_pointer_8"))(regex->match_data);
        if (start) *start = ovector[0];
        if (end) *end = ovector[1];
    }
    return 1;
}

void coreos_regex_free(coreos_regex *regex) {
    if (!regex) return;
    ((pcre2_free_type)resolve(&pcre2_library, "pcre2_match_data_free_8"))(regex->match_data);
    ((pcre2_free_type)resolve(&pcre2_library, "pcre2_code_free_8"))(regex->code);
    free(regex);
}
