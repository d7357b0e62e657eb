// Stage 1 of `coreos run`: everything between clone(2) and execve(2) of an app. Swift
// prepares every path and string; this code only makes system calls (the child of a
// multithreaded process may not allocate or take locks), reports the first failure through
// a pipe as "STEP: errno", and otherwise becomes the app.
#ifndef COREOS_CSTAGE1_H
#define COREOS_CSTAGE1_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One bind mount into the app's root (`target` is inside the new root, absolute).
struct coreos_bind {
    const char *source;
    const char *target;
    int read_only;
    int is_directory;
};

/// A resource limit set on the app before it starts (setrlimit).
struct coreos_rlimit {
    int resource;
    unsigned long long soft;
    unsigned long long hard;
};

/// One network interface of the pod.
struct coreos_interface {
    const char *name;
    unsigned char address[4];
    int prefix;
    unsigned char gateway[4];
    unsigned int mtu;
    int default_route;
};

struct coreos_stage1_spec {
    /// Where the app's root is assembled (an existing empty directory).
    const char *rootfs;
    /// overlayfs options (`lowerdir=…,upperdir=…,workdir=…`), or NULL to bind `lower_copy`.
    const char *overlay_options;
    /// With no overlay: a prepared directory bound as the root.
    const char *root_source;
    const char *const *argv;
    const char *const *envp;
    const char *cwd;
    const char *hostname;
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t group_count;
    /// CLONE_NEW* flags.
    int namespaces;
    /// With a user namespace (`--private-users`): host IDs that uid/gid 0 of the pod map
    /// to, 65536 of them. 0: no user namespace.
    unsigned int userns_base;
    int readonly_rootfs;
    int no_new_privileges;
    /// Capabilities kept in the bounding, permitted and effective sets (bit N = capability N).
    uint64_t capabilities;
    const struct coreos_bind *binds;
    size_t bind_count;
    /// Paths (inside the root) covered by /dev/null or an empty read-only tmpfs.
    const char *const *masked_paths;
    size_t masked_count;
    /// Paths (inside the root) made read-only.
    const char *const *readonly_paths;
    size_t readonly_count;
    /// The pod's cgroup.procs files (v1 controllers and/or v2) the child is moved into
    /// before it runs anything of the app.
    const char *const *cgroup_procs;
    size_t cgroup_count;
    /// For `enter`: a PID whose namespaces are joined instead of creating new ones.
    pid_t join_pid;
    /// Networks: the veth ends the parent put in our namespace, renamed eth0, eth1, … in
    /// this order, each with its IPv4 address; the default route goes through the gateway
    /// of the one that has `default_route`.
    const struct coreos_interface *interfaces;
    size_t interface_count;
    /// Called in the parent with the child's PID after it is in its cgroups and before it
    /// runs (to give it its network); non-zero stops the start with that errno.
    int (*before_start)(pid_t pid, void *context);
    void *before_start_context;
    /// Several apps: the others (each with its own root, argv, environment, user, binds,
    /// confinement); `rootfs` of every app is then its path inside `pod_root`, a directory
    /// that becomes the pod's tmpfs root, and each app is chrooted into its tree.
    const struct coreos_stage1_spec *const *extra_apps;
    size_t extra_app_count;
    const char *pod_root;
    /// Where the pod's init reports "INDEX STATUS\n" as apps end (-1: nowhere).
    int status_fd;
    const struct coreos_rlimit *rlimits;
    size_t rlimit_count;
    /// With join_pid: the directory (inside the pod) to chroot into; NULL for the pod root.
    const char *join_root;
};

/// Clones the app's process as `spec` describes. Returns its PID (in our namespace), or
/// -1 with `error` filled ("pivot_root: Operation not permitted"); the child has been
/// reaped then. The child is stopped until every setup step succeeded, so a returned PID
/// is an app that is running (or has exited on its own).
pid_t coreos_stage1_spawn(const struct coreos_stage1_spec *spec, char *error, size_t error_size);

/// From now on SIGTERM, SIGINT, SIGHUP and SIGQUIT sent to this process are passed to
/// `pid` (the pod's init, which passes them to the apps) instead of ending us, so
/// `kill <coreos run>` and Ctrl-C stop the pod the way they stop a foreground program.
void coreos_forward_stop_signals(pid_t pid);

/// RLIMIT_* by name without the prefix (`NOFILE`), or -1.
int coreos_rlimit_resource(const char *name);

/// Capability numbers up to this (inclusive) are known to the running kernel.
int coreos_last_capability(void);

#ifdef __cplusplus
}
#endif

#endif
