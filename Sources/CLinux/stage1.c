#define _GNU_SOURCE
#include "CLinux.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct child_context {
    const struct coreos_stage1_spec *spec;
    int go_read;     // the parent closes its end once the child may run
    int error_write; // close-on-exec: EOF at exec means success
};

// The child reports "STEP: errno text" and exits; nothing here allocates.
static void fail(int error_fd, const char *step) {
    int saved = errno;
    char message[256];
    size_t length = 0;
    for (const char *p = step; *p && length < 120; p++) message[length++] = *p;
    message[length++] = ':';
    message[length++] = ' ';
    const char *text = strerror(saved);
    for (const char *p = text; *p && length < sizeof(message) - 1; p++) message[length++] = *p;
    ssize_t ignored = write(error_fd, message, length);
    (void)ignored;
    _exit(254);
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t length = (ssize_t)strlen(text);
    ssize_t written = write(fd, text, (size_t)length);
    close(fd);
    return written == length ? 0 : -1;
}

// Builds "ROOT/PATH" in `buffer`; PATH starts with '/'.
static const char *in_root(char *buffer, size_t size, const char *root, const char *path) {
    size_t used = 0;
    for (const char *p = root; *p && used < size - 1; p++) buffer[used++] = *p;
    for (const char *p = path; *p && used < size - 1; p++) buffer[used++] = *p;
    buffer[used] = 0;
    return buffer;
}

// In a user namespace device nodes cannot be made: the host's are bound instead.
static int in_user_namespace;

static void make_device(int error_fd, const char *path, mode_t mode, unsigned major, unsigned minor) {
    if (in_user_namespace) {
        const char *name = strrchr(path, '/');
        char host[64] = "/dev";
        strncat(host, name ? name : "/null", sizeof host - strlen(host) - 1);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) close(fd);
        if (mount(host, path, NULL, MS_BIND, NULL) != 0) fail(error_fd, path);
        return;
    }
    if (mknod(path, S_IFCHR | mode, makedev(major, minor)) != 0 && errno != EEXIST) fail(error_fd, path);
    chmod(path, mode);
}

static void setup_dev(int error_fd, const char *root) {
    char path[4096];
    if (mount("tmpfs", in_root(path, sizeof path, root, "/dev"), "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") != 0)
        fail(error_fd, "mount /dev");
    make_device(error_fd, in_root(path, sizeof path, root, "/dev/null"), 0666, 1, 3);
    make_device(error_fd, in_root(path, sizeof path, root, "/dev/zero"), 0666, 1, 5);
    make_device(error_fd, in_root(path, sizeof path, root, "/dev/full"), 0666, 1, 7);
    make_device(error_fd, in_root(path, sizeof path, root, "/dev/random"), 0666, 1, 8);
    make_device(error_fd, in_root(path, sizeof path, root, "/dev/urandom"), 0666, 1, 9);
    make_device(error_fd, in_root(path, sizeof path, root, "/dev/tty"), 0666, 5, 0);
    mkdir(in_root(path, sizeof path, root, "/dev/pts"), 0755);
    if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") != 0)
        fail(error_fd, "mount /dev/pts");
    symlink("pts/ptmx", in_root(path, sizeof path, root, "/dev/ptmx"));
    mkdir(in_root(path, sizeof path, root, "/dev/shm"), 01777);
    if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k") != 0)
        fail(error_fd, "mount /dev/shm");
    symlink("/proc/self/fd", in_root(path, sizeof path, root, "/dev/fd"));
    symlink("/proc/self/fd/0", in_root(path, sizeof path, root, "/dev/stdin"));
    symlink("/proc/self/fd/1", in_root(path, sizeof path, root, "/dev/stdout"));
    symlink("/proc/self/fd/2", in_root(path, sizeof path, root, "/dev/stderr"));
}

static void loopback_up(int error_fd) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) fail(error_fd, "socket");
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(sock, SIOCGIFFLAGS, &request) != 0) fail(error_fd, "SIOCGIFFLAGS lo");
    request.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(sock, SIOCSIFFLAGS, &request) != 0) fail(error_fd, "SIOCSIFFLAGS lo");
    close(sock);
}

static void drop_capabilities(int error_fd, uint64_t keep) {
    int last = coreos_last_capability();
    for (int cap = 0; cap <= last; cap++) {
        if (keep & (1ULL << cap)) continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) fail(error_fd, "drop capability");
    }
}

static void set_capabilities(int error_fd, uint64_t keep) {
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    data[0].effective = data[0].permitted = data[0].inheritable = (uint32_t)keep;
    data[1].effective = data[1].permitted = data[1].inheritable = (uint32_t)(keep >> 32);
    if (syscall(SYS_capset, &header, data) != 0) fail(error_fd, "capset");
    // Ambient capabilities let a root app keep them across exec without file capabilities.
    int last = coreos_last_capability();
    for (int cap = 0; cap <= last; cap++) {
        if (keep & (1ULL << cap)) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
    }
}

static void enter_namespaces(int error_fd, pid_t pid) {
    // Every namespace is opened first, while we are still the host's root: once in the
    // pod's user namespace (when it has one, joined first, or the others refuse us) the
    // host's /proc/PID/ns files are out of reach.
    static const char *const kinds[] = {"ipc", "uts", "net", "pid", "mnt"};
    int fds[5];
    char path[64];
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)pid, kinds[i]);
        fds[i] = open(path, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) fail(error_fd, path);
    }
    snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
    int theirs = open(path, O_RDONLY | O_CLOEXEC);
    int ours = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
    struct stat their_info, our_info;
    if (theirs >= 0 && ours >= 0 && fstat(theirs, &their_info) == 0 && fstat(ours, &our_info) == 0 &&
        their_info.st_ino != our_info.st_ino) {
        if (setns(theirs, CLONE_NEWUSER) != 0) fail(error_fd, "user");
    }
    if (theirs >= 0) close(theirs);
    if (ours >= 0) close(ours);
    for (int i = 0; i < 5; i++) {
        if (setns(fds[i], 0) != 0) fail(error_fd, kinds[i]);
        close(fds[i]);
    }
}

static void finish_and_exec(const struct coreos_stage1_spec *spec, int error_fd) {
    if (spec->hostname && !spec->join_pid && sethostname(spec->hostname, strlen(spec->hostname)) != 0)
        fail(error_fd, "sethostname");
    if (spec->capabilities != ~0ULL) drop_capabilities(error_fd, spec->capabilities);
    for (size_t i = 0; i < spec->rlimit_count; i++) {
        struct rlimit limit = {.rlim_cur = spec->rlimits[i].soft, .rlim_max = spec->rlimits[i].hard};
        if (setrlimit(spec->rlimits[i].resource, &limit) != 0) fail(error_fd, "setrlimit");
    }
    if (setgroups(spec->group_count, spec->groups) != 0) fail(error_fd, "setgroups");
    if (setresgid(spec->gid, spec->gid, spec->gid) != 0) fail(error_fd, "setgid");
    if (spec->uid == 0) {
        if (setresuid(0, 0, 0) != 0) fail(error_fd, "setuid");
        if (spec->capabilities != ~0ULL) set_capabilities(error_fd, spec->capabilities);
    } else if (setresuid(spec->uid, spec->uid, spec->uid) != 0) {
        fail(error_fd, "setuid");
    }
    if (spec->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(error_fd, "no_new_privs");
    if (chdir(spec->cwd ? spec->cwd : "/") != 0) fail(error_fd, "chdir to the working directory");
    // The app starts with nothing blocked and every signal at its default action, whatever
    // the thread that called us had (Swift's runtime threads block most signals).
    struct sigaction default_action;
    memset(&default_action, 0, sizeof default_action);
    default_action.sa_handler = SIG_DFL;
    for (int signal_number = 1; signal_number < NSIG; signal_number++) {
        if (signal_number != SIGKILL && signal_number != SIGSTOP) sigaction(signal_number, &default_action, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    environ = (char **)spec->envp;
    execvp(spec->argv[0], (char *const *)spec->argv);
    fail(error_fd, spec->argv[0]);
}

// PID 1 of the pod: the app runs as its child, so it keeps the default signal actions
// (PID 1 ignores signals it has no handler for); this loop forwards the stopping signals,
// reaps every orphan, and exits with the app's status (128 + signal when it was killed).
// PID 1 of the pod: the apps run as its children, so they keep the default signal
// actions (PID 1 ignores signals it has no handler for); this loop forwards the stopping
// signals to every app, reaps orphans, reports each app's status on `status_fd` as
// "INDEX STATUS\n", and exits when the last app has: with the first failing app's status
// (128 + signal when it was killed), else 0.
static int pod_init(const struct coreos_stage1_spec *spec, int error_fd) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    size_t count = 1 + spec->extra_app_count;
    pid_t apps[64];
    int running = 0;
    for (size_t i = 0; i < count && i < 64; i++) {
        const struct coreos_stage1_spec *app = i == 0 ? spec : spec->extra_apps[i - 1];
        apps[i] = fork();
        if (apps[i] < 0) fail(error_fd, "fork an app");
        if (apps[i] == 0) {
            if (spec->extra_app_count) {
                if (chroot(app->rootfs) != 0) fail(error_fd, "chroot into the app");
                if (chdir("/") != 0) fail(error_fd, "chdir /");
            }
            finish_and_exec(app, error_fd);
        }
        running++;
    }
    close(error_fd);
    prctl(PR_SET_NAME, "coreos-init", 0, 0, 0);
    int result = -1;
    for (;;) {
        siginfo_t info;
        int signal_number = sigwaitinfo(&all, &info);
        if (signal_number < 0) continue;
        if (signal_number == SIGCHLD) {
            int status;
            pid_t reaped;
            while ((reaped = waitpid(-1, &status, WNOHANG)) > 0) {
                for (size_t i = 0; i < count && i < 64; i++) {
                    if (apps[i] != reaped) continue;
                    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                    if (spec->status_fd >= 0) {
                        char line[32];
                        int length = snprintf(line, sizeof line, "%zu %d\n", i, code);
                        ssize_t ignored = write(spec->status_fd, line, (size_t)length);
                        (void)ignored;
                    }
                    if (result <= 0 && code != 0) result = code;
                    if (result < 0) result = 0;
                    apps[i] = 0;
                    running--;
                }
            }
            if (running == 0) _exit(result < 0 ? 0 : result);
        } else if (signal_number == SIGTERM || signal_number == SIGINT || signal_number == SIGHUP ||
                   signal_number == SIGQUIT || signal_number == SIGUSR1 || signal_number == SIGUSR2 ||
                   signal_number == SIGWINCH) {
            for (size_t i = 0; i < count && i < 64; i++) {
                if (apps[i] > 0) kill(apps[i], signal_number);
            }
        }
    }
}

// mkdir -p on a path in a fixed buffer.
static void make_directories(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(path, 0755);
        *p = '/';
    }
    mkdir(path, 0755);
}

// Mounts an app's root at `root` (a path in the current mount tree) with /proc, /sys,
// /dev and its binds.
static void assemble_root(const struct coreos_stage1_spec *app, const char *root, int namespaces, int error_fd) {
    char path[4096];
    if (app->overlay_options) {
        if (mount("overlay", root, "overlay", 0, app->overlay_options) != 0) fail(error_fd, "mount overlay");
    } else if (mount(app->root_source, root, NULL, MS_BIND | MS_REC, NULL) != 0) {
        fail(error_fd, "bind the root");
    }
    mkdir(in_root(path, sizeof path, root, "/proc"), 0555);
    if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) fail(error_fd, "mount /proc");
    mkdir(in_root(path, sizeof path, root, "/sys"), 0555);
    int sys_flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (namespaces & CLONE_NEWNET) {
        if (mount("sysfs", path, "sysfs", sys_flags, NULL) != 0) fail(error_fd, "mount /sys");
    } else if (mount("/sys", path, NULL, MS_BIND | MS_REC, NULL) != 0 ||
               mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | sys_flags, NULL) != 0) {
        fail(error_fd, "bind /sys");
    }
    mkdir(in_root(path, sizeof path, root, "/dev"), 0755);
    setup_dev(error_fd, root);
    for (size_t i = 0; i < app->bind_count; i++) {
        const struct coreos_bind *bind = &app->binds[i];
        in_root(path, sizeof path, root, bind->target);
        if (bind->is_directory) {
            make_directories(path);
        } else {
            int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (fd >= 0) close(fd);
        }
        if (mount(bind->source, path, NULL, MS_BIND | MS_REC, NULL) != 0) fail(error_fd, bind->target);
        if (bind->read_only && mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0)
            fail(error_fd, bind->target);
    }
}

// Masked and read-only paths and the read-only root of an app whose root is `prefix` in
// the pod's (already pivoted) tree: "" for a single app.
static void confine(const struct coreos_stage1_spec *app, const char *prefix, int error_fd) {
    char path[4096];
    char null_device[4096];
    in_root(null_device, sizeof null_device, prefix, "/dev/null");
    for (size_t i = 0; i < app->masked_count; i++) {
        struct stat info;
        in_root(path, sizeof path, prefix, app->masked_paths[i]);
        if (stat(path, &info) != 0) continue;
        int status = S_ISDIR(info.st_mode) ? mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0")
                                           : mount(null_device, path, NULL, MS_BIND, NULL);
        if (status != 0) fail(error_fd, app->masked_paths[i]);
    }
    for (size_t i = 0; i < app->readonly_count; i++) {
        in_root(path, sizeof path, prefix, app->readonly_paths[i]);
        if (access(path, F_OK) != 0) continue;
        if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) != 0 ||
            mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0)
            fail(error_fd, app->readonly_paths[i]);
    }
    if (app->readonly_rootfs) {
        const char *root = *prefix ? prefix : "/";
        if (mount(NULL, root, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0) fail(error_fd, "read-only root");
    }
}

static int child_main(void *argument) {
    struct child_context *context = argument;
    const struct coreos_stage1_spec *spec = context->spec;
    int error_fd = context->error_write;
    char go;
    // Wait until the parent has put us in our cgroups (or died: then read returns 0).
    if (read(context->go_read, &go, 1) != 1) _exit(254);
    close(context->go_read);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

    if (spec->join_pid) {
        enter_namespaces(error_fd, spec->join_pid);
        // A new PID namespace applies to children: fork once more to be inside it.
        pid_t inner = fork();
        if (inner < 0) fail(error_fd, "fork");
        if (inner > 0) {
            int status;
            while (waitpid(inner, &status, 0) < 0 && errno == EINTR) {}
            _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        }
        if (spec->join_root && chroot(spec->join_root) != 0) fail(error_fd, "chroot");
        if (spec->join_root && chdir("/") != 0) fail(error_fd, "chdir /");
        finish_and_exec(spec, error_fd);
    }

    for (size_t i = 0; i < spec->interface_count; i++) {
        const struct coreos_interface *interface = &spec->interfaces[i];
        char name[16];
        snprintf(name, sizeof name, "eth%zu", i);
        errno = -coreos_netlink_set_link(interface->name, name, NULL, 1, interface->mtu);
        if (errno) fail(error_fd, "configure a network interface");
        errno = -coreos_netlink_add_address(name, interface->address, 4, interface->prefix);
        if (errno) fail(error_fd, "address of a network interface");
        if (interface->default_route) {
            errno = -coreos_netlink_add_default_route(interface->gateway, 4);
            if (errno) fail(error_fd, "default route");
        }
    }

    in_user_namespace = spec->userns_base != 0;
    if (in_user_namespace && (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0)) fail(error_fd, "become root of the user namespace");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail(error_fd, "make / private");
    if (spec->extra_app_count == 0) {
        // One app: its root is the pod's root.
        assemble_root(spec, spec->rootfs, spec->namespaces, error_fd);
        if (chdir(spec->rootfs) != 0) fail(error_fd, "chdir to the root");
    } else {
        // Several: a tmpfs root with each app's tree under its `rootfs` path.
        char path[4096];
        if (mount("tmpfs", spec->pod_root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=65536k") != 0)
            fail(error_fd, "mount the pod root");
        for (size_t i = 0; i <= spec->extra_app_count; i++) {
            const struct coreos_stage1_spec *app = i == 0 ? spec : spec->extra_apps[i - 1];
            in_root(path, sizeof path, spec->pod_root, app->rootfs);
            make_directories(path);
            assemble_root(app, path, spec->namespaces, error_fd);
        }
        if (chdir(spec->pod_root) != 0) fail(error_fd, "chdir to the pod root");
    }
    if (syscall(SYS_pivot_root, ".", ".") != 0) fail(error_fd, "pivot_root");
    if (umount2(".", MNT_DETACH) != 0) fail(error_fd, "detach the old root");
    if (chdir("/") != 0) fail(error_fd, "chdir /");
    if (spec->extra_app_count == 0) {
        confine(spec, "", error_fd);
    } else {
        for (size_t i = 0; i <= spec->extra_app_count; i++) {
            const struct coreos_stage1_spec *app = i == 0 ? spec : spec->extra_apps[i - 1];
            confine(app, app->rootfs, error_fd);
        }
    }
    if (spec->namespaces & CLONE_NEWNET) loopback_up(error_fd);
    if (!(spec->namespaces & CLONE_NEWPID)) finish_and_exec(spec, error_fd);
    return pod_init(spec, error_fd);
}

pid_t coreos_stage1_spawn(const struct coreos_stage1_spec *spec, char *error, size_t error_size) {
    int go[2], errors[2];
    if (pipe2(go, O_CLOEXEC) != 0) {
        snprintf(error, error_size, "pipe: %s", strerror(errno));
        return -1;
    }
    if (pipe2(errors, O_CLOEXEC) != 0) {
        snprintf(error, error_size, "pipe: %s", strerror(errno));
        close(go[0]);
        close(go[1]);
        return -1;
    }
    size_t stack_size = 256 * 1024;
    void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        snprintf(error, error_size, "mmap: %s", strerror(errno));
        return -1;
    }
    struct child_context context = {.spec = spec, .go_read = go[0], .error_write = errors[1]};
    int flags = SIGCHLD | (spec->join_pid ? 0 : spec->namespaces) | (spec->userns_base && !spec->join_pid ? CLONE_NEWUSER : 0);
    pid_t pid = clone(child_main, (char *)stack + stack_size, flags, &context);
    int clone_errno = errno;
    close(go[0]);
    close(errors[1]);
    if (pid < 0) {
        munmap(stack, stack_size);
        close(go[1]);
        close(errors[0]);
        snprintf(error, error_size, "clone: %s", strerror(clone_errno));
        return -1;
    }
    char pid_text[32];
    snprintf(pid_text, sizeof pid_text, "%d", (int)pid);
    int refused = 0;
    if (spec->userns_base && !spec->join_pid) {
        char map[64], file[64];
        snprintf(map, sizeof map, "0 %u 65536", spec->userns_base);
        snprintf(file, sizeof file, "/proc/%d/uid_map", (int)pid);
        if (write_file(file, map) != 0) {
            snprintf(error, error_size, "uid_map: %s", strerror(errno));
            refused = 1;
        }
        snprintf(file, sizeof file, "/proc/%d/gid_map", (int)pid);
        if (!refused && write_file(file, map) != 0) {
            snprintf(error, error_size, "gid_map: %s", strerror(errno));
            refused = 1;
        }
    }
    for (size_t i = 0; i < spec->cgroup_count && !refused; i++) {
        if (write_file(spec->cgroup_procs[i], pid_text) != 0) {
            snprintf(error, error_size, "join cgroup %s: %s", spec->cgroup_procs[i], strerror(errno));
            refused = 1;
        }
    }
    if (!refused && spec->before_start) {
        int status = spec->before_start(pid, spec->before_start_context);
        if (status != 0) {
            snprintf(error, error_size, "network: %s", strerror(status));
            refused = 1;
        }
    }
    if (refused) {
        // The child never ran anything of the app: it dies waiting for its start.
        kill(pid, SIGKILL);
        close(go[1]);
        close(errors[0]);
        waitpid(pid, NULL, 0);
        munmap(stack, stack_size);
        return -1;
    }
    char start = 1;
    ssize_t ignored = write(go[1], &start, 1);
    (void)ignored;
    close(go[1]);
    ssize_t length = read(errors[0], error, error_size - 1);
    close(errors[0]);
    // The child has exec'ed (or failed): its stack, a copy in its own address space, is
    // no longer ours to keep.
    munmap(stack, stack_size);
    if (length > 0) {
        error[length] = 0;
        waitpid(pid, NULL, 0);
        return -1;
    }
    error[0] = 0;
    return pid;
}

int coreos_last_capability(void) {
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return CAP_LAST_CAP;
    char text[16] = {0};
    ssize_t length = read(fd, text, sizeof text - 1);
    close(fd);
    return length > 0 ? atoi(text) : CAP_LAST_CAP;
}

int coreos_rlimit_resource(const char *name) {
    static const struct {
        const char *name;
        int resource;
    } table[] = {
        {"AS", RLIMIT_AS},           {"CORE", RLIMIT_CORE},       {"CPU", RLIMIT_CPU},
        {"DATA", RLIMIT_DATA},       {"FSIZE", RLIMIT_FSIZE},     {"LOCKS", RLIMIT_LOCKS},
        {"MEMLOCK", RLIMIT_MEMLOCK}, {"MSGQUEUE", RLIMIT_MSGQUEUE}, {"NICE", RLIMIT_NICE},
        {"NOFILE", RLIMIT_NOFILE},   {"NPROC", RLIMIT_NPROC},     {"RSS", RLIMIT_RSS},
        {"RTPRIO", RLIMIT_RTPRIO},   {"RTTIME", RLIMIT_RTTIME},   {"SIGPENDING", RLIMIT_SIGPENDING},
        {"STACK", RLIMIT_STACK},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].name, name) == 0) return table[i].resource;
    }
    return -1;
}

static volatile pid_t forward_target;

static void forward_signal(int signal_number) {
    pid_t target = forward_target;
    if (target > 0) kill(target, signal_number);
}

void coreos_forward_stop_signals(pid_t pid) {
    forward_target = pid;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = forward_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    int signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) sigaction(signals[i], &action, NULL);
}
