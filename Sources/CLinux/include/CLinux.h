// Linux calls that Swift cannot make directly: variadic functions (prctl, ioctl),
// syscalls without a glibc wrapper (pivot_root), and ELF introspection of loaded
// libraries. Everything here is a thin, documented wrapper; policy lives in Swift.
#ifndef COREOS_CLINUX_H
#define COREOS_CLINUX_H

#include <stddef.h>
#include <sys/types.h>

#include "CStage1.h"

#ifdef __cplusplus
extern "C" {
#endif

/// glibc's run-time version string, e.g. "2.36".
const char *coreos_libc_version(void);

/// Finds the loaded shared object whose file name contains `library_substring`
/// (e.g. "libsystemd.so") and returns the highest numeric suffix among its ELF
/// symbol-version definitions that start with `version_prefix` (e.g. "LIBSYSTEMD_"),
/// which for libsystemd is the systemd release it was built from.
/// Returns -1 when the library is not loaded or has no such definitions.
long coreos_loaded_library_version(const char *library_substring, const char *version_prefix);

/// Copies the path of the loaded shared object containing `symbol_address` into `buffer`.
/// Returns 0 on success, -1 if the address is not inside a loaded object.
int coreos_library_path_of(const void *symbol_address, char *buffer, size_t buffer_size);

/// malloc_trim(0): hands memory malloc holds free back to the kernel. Returns 1 when
/// some was released. (Swift's Glibc module does not import malloc.h.)
int coreos_release_free_memory(void);

/// pivot_root(2); glibc has no wrapper. Returns 0 or -1 with errno set.
int coreos_pivot_root(const char *new_root, const char *put_old);

/// prctl(PR_SET_PDEATHSIG, signal). Returns 0 or -1 with errno set.
int coreos_set_parent_death_signal(int signal_number);

/// prctl(PR_SET_CHILD_SUBREAPER, on). Returns 0 or -1 with errno set.
int coreos_set_child_subreaper(int on);

/// prctl(PR_SET_NAME, name): the thread name shown by ps/top (truncated to 15 bytes).
int coreos_set_process_name(const char *name);

/// ioctl(fd, request, argument) for requests whose argument is a pointer.
int coreos_ioctl_pointer(int fd, unsigned long request, void *argument);

/// Installs SIGINT/SIGTERM/SIGHUP handlers that only record the signal, so long-running
/// commands can poll ``coreos_termination_signal`` and clean up (release a lock, revoke a
/// lease) before exiting.
void coreos_install_termination_handlers(void);

/// openat2(2) (no glibc wrapper): `resolve` takes RESOLVE_* flags. Returns a descriptor,
/// or -1 with errno set (ENOSYS on kernels before 5.6).
int coreos_openat2(int directory, const char *path, int flags, unsigned int mode, unsigned long long resolve);

/// RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: the path is resolved as if `directory` were
/// `/`, so `..` and absolute symbolic links cannot leave it.
extern const unsigned long long coreos_resolve_in_root;

/// O_PATH, which Swift's Glibc module does not export.
extern const int coreos_o_path;

/// makedev(3) (a macro in glibc).
unsigned long coreos_makedev(unsigned int major, unsigned int minor);

/// lgetxattr(2): the attribute's length, or -1 with errno set.
long coreos_lgetxattr(const char *path, const char *name, void *value, size_t size);

/// fsetxattr(2) (sys/xattr.h is not in Swift's Glibc module).
int coreos_fsetxattr(int fd, const char *name, const void *value, size_t size, int flags);

/// rtnetlink, with fixed buffers (callable from stage 1's child). Each returns 0 or -errno.
/// A bridge (an existing one is fine).
int coreos_netlink_create_bridge(const char *name, unsigned int mtu);
/// A veth pair; the peer is created in the network namespace of `peer_pid` (0: ours).
int coreos_netlink_create_veth(const char *name, const char *peer, int peer_pid, unsigned int mtu);
/// Renames (`new_name`), enslaves (`master`), sets the MTU and/or brings a link up.
int coreos_netlink_set_link(const char *name, const char *new_name, const char *master, int up, unsigned int mtu);
int coreos_netlink_delete_link(const char *name);
/// An IPv4 (length 4) or IPv6 (16) address with its prefix (an existing one is fine).
int coreos_netlink_add_address(const char *name, const unsigned char *address, int length, int prefix);
int coreos_netlink_add_default_route(const unsigned char *gateway, int length);

/// Inflates a gzip stream (several concatenated members are read in turn, as gzip(1)
/// does) into a malloc'ed buffer the caller frees. Stops with -2 as soon as the output
/// would pass `limit` bytes, so a small bomb cannot take much memory.
/// Returns 0, -1 when the data is not valid gzip, -2 over the limit, -3 out of memory.
int coreos_gunzip(const unsigned char *input, size_t length, size_t limit, unsigned char **output,
                  size_t *output_length);


/// The signal number that asked the process to stop, or 0.
int coreos_termination_signal(void);

/// The CLONE_NEW* flags, so Swift code does not depend on sched.h macros.
int coreos_clone_new_mount(void);
int coreos_clone_new_uts(void);
int coreos_clone_new_ipc(void);
int coreos_clone_new_user(void);
int coreos_clone_new_pid(void);
int coreos_clone_new_net(void);
int coreos_clone_new_cgroup(void);

/// Starts a service process: a new session (its process group is its PID), signals reset,
/// the given descriptors as stdin/stdout/stderr, every other descriptor closed on exec,
/// then `directory`, the group and the user (each skipped when NULL or negative), then
/// execve. Returns the PID, or -1 with `*error_number` set when fork or any step in the
/// child failed (the child reports its errno through a close-on-exec pipe).
int coreos_spawn_service(const char *path, char *const argv[], char *const envp[], const char *directory,
                         int uid, int gid, int stdin_fd, int stdout_fd, int stderr_fd, int *error_number);

/// pidfd_open(2): a descriptor that becomes readable when the process exits.
int coreos_pidfd_open(int pid);

/// waitpid(pid, WNOHANG): 0 while it runs; the PID once reaped, with `*exited` 1 and
/// `*code` the exit status, or `*exited` 0 and `*code` the terminating signal.
int coreos_reap(int pid, int *exited, int *code);

/// epoll for the supervisor's watcher thread (struct epoll_event is packed on x86-64,
/// which Swift does not import): create, watch for input or hang-up, unwatch, and wait
/// (no timeout) filling `fds` with up to `capacity` (at most 64) ready descriptors.
int coreos_epoll_create(void);
int coreos_epoll_watch(int epoll, int fd);
int coreos_epoll_unwatch(int epoll, int fd);
int coreos_epoll_wait(int epoll, int *fds, int capacity);

/// pipe2(fds, O_CLOEXEC).
int coreos_pipe_cloexec(int fds[2]);

#ifdef __cplusplus
}
#endif

#endif
