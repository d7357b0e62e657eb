#define _GNU_SOURCE
#include "CLinux.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

const char *coreos_libc_version(void) { return gnu_get_libc_version(); }

struct version_search {
    const char *library_substring;
    const char *version_prefix;
    long best;
    int found;
};

// Dynamic-section pointers are link-time addresses in the file; glibc relocates only
// some of them in place. A value below the load base is unrelocated.
static uintptr_t relocate(uintptr_t value, uintptr_t base) {
    return value < base ? value + base : value;
}

static int visit_object(struct dl_phdr_info *info, size_t size, void *context) {
    (void)size;
    struct version_search *search = context;
    if (info->dlpi_name == NULL || strstr(info->dlpi_name, search->library_substring) == NULL) return 0;
    search->found = 1;
    const ElfW(Dyn) *dynamic = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC) {
            dynamic = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
            break;
        }
    }
    if (dynamic == NULL) return 1;
    uintptr_t strtab = 0, verdef = 0;
    long verdef_count = 0;
    for (const ElfW(Dyn) *d = dynamic; d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_STRTAB) strtab = relocate(d->d_un.d_ptr, info->dlpi_addr);
        else if (d->d_tag == DT_VERDEF) verdef = relocate(d->d_un.d_ptr, info->dlpi_addr);
        else if (d->d_tag == DT_VERDEFNUM) verdef_count = (long)d->d_un.d_val;
    }
    if (strtab == 0 || verdef == 0) return 1;
    size_t prefix_length = strlen(search->version_prefix);
    const unsigned char *cursor = (const unsigned char *)verdef;
    for (long n = 0; n < verdef_count; n++) {
        const ElfW(Verdef) *definition = (const ElfW(Verdef) *)cursor;
        if (definition->vd_cnt > 0) {
            const ElfW(Verdaux) *aux = (const ElfW(Verdaux) *)(cursor + definition->vd_aux);
            const char *name = (const char *)(strtab + aux->vda_name);
            if (strncmp(name, search->version_prefix, prefix_length) == 0) {
                char *end = NULL;
                long value = strtol(name + prefix_length, &end, 10);
                if (end != name + prefix_length && *end == '\0' && value > search->best) search->best = value;
            }
        }
        if (definition->vd_next == 0) break;
        cursor += definition->vd_next;
    }
    return 1;
}

long coreos_loaded_library_version(const char *library_substring, const char *version_prefix) {
    struct version_search search = {library_substring, version_prefix, -1, 0};
    dl_iterate_phdr(visit_object, &search);
    return search.best;
}

int coreos_library_path_of(const void *symbol_address, char *buffer, size_t buffer_size) {
    Dl_info info;
    if (buffer_size == 0 || dladdr(symbol_address, &info) == 0 || info.dli_fname == NULL) return -1;
    strncpy(buffer, info.dli_fname, buffer_size - 1);
    buffer[buffer_size - 1] = '\0';
    return 0;
}

int coreos_pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int coreos_set_parent_death_signal(int signal_number) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal_number, 0UL, 0UL, 0UL);
}

int coreos_set_child_subreaper(int on) {
    return prctl(PR_SET_CHILD_SUBREAPER, (unsigned long)(on != 0), 0UL, 0UL, 0UL);
}

int coreos_set_process_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)(uintptr_t)name, 0UL, 0UL, 0UL);
}

int coreos_ioctl_pointer(int fd, unsigned long request, void *argument) {
    return ioctl(fd, request, argument);
}

int coreos_clone_new_mount(void) { return CLONE_NEWNS; }
int coreos_clone_new_uts(void) { return CLONE_NEWUTS; }
int coreos_clone_new_ipc(void) { return CLONE_NEWIPC; }
int coreos_clone_new_user(void) { return CLONE_NEWUSER; }
int coreos_clone_new_pid(void) { return CLONE_NEWPID; }
int coreos_clone_new_net(void) { return CLONE_NEWNET; }
int coreos_clone_new_cgroup(void) { return CLONE_NEWCGROUP; }

static volatile sig_atomic_t termination_signal = 0;

static void record_termination(int signal_number) { termination_signal = signal_number; }

void coreos_install_termination_handlers(void) {
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = record_termination;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
}

int coreos_termination_signal(void) { return termination_signal; }

#include <malloc.h>

int coreos_release_free_memory(void) {
    return malloc_trim(0);
}

#include <zlib.h>

int coreos_gunzip(const unsigned char *input, size_t length, size_t limit, unsigned char **output,
                  size_t *output_length) {
    *output = NULL;
    *output_length = 0;
    size_t capacity = length * 4 < 4096 ? 4096 : length * 4;
    if (capacity > limit + 1) capacity = limit + 1;
    unsigned char *buffer = malloc(capacity);
    if (!buffer) return -3;
    z_stream stream = {0};
    // 16 + MAX_WBITS: gzip framing only (no zlib or raw deflate).
    if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) {
        free(buffer);
        return -3;
    }
    stream.next_in = (unsigned char *)input;
    size_t produced = 0;
    int result = -1;
    for (;;) {
        if (produced == capacity) {
            if (capacity > limit) {
                result = -2;
                break;
            }
            size_t larger = capacity * 2 > limit + 1 ? limit + 1 : capacity * 2;
            unsigned char *grown = realloc(buffer, larger);
            if (!grown) {
                result = -3;
                break;
            }
            buffer = grown;
            capacity = larger;
        }
        size_t remaining_input = length - (size_t)(stream.next_in - input);
        stream.avail_in = remaining_input > UINT32_MAX ? UINT32_MAX : (uInt)remaining_input;
        size_t room = capacity - produced;
        stream.next_out = buffer + produced;
        stream.avail_out = room > UINT32_MAX ? UINT32_MAX : (uInt)room;
        uInt before = stream.avail_out;
        int status = inflate(&stream, Z_NO_FLUSH);
        produced += before - stream.avail_out;
        if (status == Z_STREAM_END) {
            size_t rest = length - (size_t)(stream.next_in - input);
            if (rest >= 2 && stream.next_in[0] == 0x1f && stream.next_in[1] == 0x8b) {
                inflateReset(&stream);
                continue;
            }
            result = rest == 0 ? 0 : -1;
            break;
        }
        if (status == Z_BUF_ERROR && stream.avail_out != 0) break; // truncated input
        if (status != Z_OK && status != Z_BUF_ERROR) break;
    }
    inflateEnd(&stream);
    if (result == 0 && produced > limit) result = -2;
    if (result != 0) {
        free(buffer);
        return result;
    }
    *output = buffer;
    *output_length = produced;
    return 0;
}

#include <linux/openat2.h>

const unsigned long long coreos_resolve_in_root = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

int coreos_openat2(int directory, const char *path, int flags, unsigned int mode, unsigned long long resolve) {
    struct open_how how = {.flags = (unsigned long long)flags, .mode = mode, .resolve = resolve};
    return (int)syscall(SYS_openat2, directory, path, &how, sizeof(how));
}

#include <fcntl.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

const int coreos_o_path = O_PATH;

unsigned long coreos_makedev(unsigned int major, unsigned int minor) { return makedev(major, minor); }

long coreos_lgetxattr(const char *path, const char *name, void *value, size_t size) {
    return (long)lgetxattr(path, name, value, size);
}

int coreos_fsetxattr(int fd, const char *name, const void *value, size_t size, int flags) {
    return fsetxattr(fd, name, value, size, flags);
}
