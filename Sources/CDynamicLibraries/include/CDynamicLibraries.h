// The three optional system libraries (libsystemd, libyaml, libarchive) are loaded when
// first used, not when coreos starts: `coreos etcd` never maps them (and the ten
// libraries they pull in, about 2.3 MiB of every member's RSS), and a node without
// libarchive still runs everything but the runtime.
//
// lazy.c defines every function coreos calls from them, with the signature of the
// library's own header. Each definition resolves the real function with dlopen/dlsym on
// its first call and jumps to it. A missing library stops the process with a message
// naming the library and its Debian package. Calling a function not defined there is a
// link error: add it to lazy.c.
#ifndef COREOS_CDYNAMICLIBRARIES_H
#define COREOS_CDYNAMICLIBRARIES_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The real address of `symbol` in the library `soname` (loading it), or NULL when the
/// library or the symbol is missing.
void *coreos_library_symbol(const char *soname, const char *symbol);

/// A PCRE2 pattern (libpcre2-8, loaded on first use, as journalctl's --grep uses it).
typedef struct coreos_regex coreos_regex;

/// Compiles `pattern` (UTF-8) as PCRE2 with UTF semantics, caseless when asked. On
/// failure returns NULL and puts PCRE2's message into `error`.
coreos_regex *coreos_regex_compile(const char *pattern, size_t length, int caseless, char *error, size_t error_size);

/// 1 when `subject` matches, 0 when not, negative on a matching error. On a match,
/// `start` and `end` (when not NULL) receive the byte range of the whole match.
int coreos_regex_match(coreos_regex *regex, const void *subject, size_t length, size_t *start, size_t *end);

void coreos_regex_free(coreos_regex *regex);

#ifdef __cplusplus
}
#endif

#endif
