#define _GNU_SOURCE
#include "CLinux.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

struct spawn_request {
    const char *path;
    char *const *argv;
    char *const *envp;
    const char *directory;
    int uid, gid, stdin_fd, stdout_fd, stderr_fd;
    int report;
};

// dup2 as a raw call (aarch64 has only dup3, which refuses equal descriptors).
static long duplicate(int from, int to) {
    if (from == to) return to;
    return syscall(SYS_dup3, from, to, 0);
}

// The child of a CLONE_VM|CLONE_VFORK clone: it shares the parent's memory (the parent is
// suspended until exec or exit), so it makes raw system calls only. glibc's setuid and
// friends would try to synchronise the credentials of every thread of what glibc thinks
// is its process (the parent's threads); the raw calls change this task alone.
static int spawn_child(void *argument) {
    struct spawn_request *request = argument;
    int failure = 0;
    sigset_t all;
    sigemptyset(&all);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof(unsigned long));
    struct sigaction standard = {.sa_handler = SIG_DFL};
    for (int signal_number = 1; signal_number < 65; signal_number++) {
        if (signal_number != SIGKILL && signal_number != SIGSTOP)
            syscall(SYS_rt_sigaction, signal_number, &standard, NULL, sizeof(unsigned long));
    }
    if (syscall(SYS_setsid) < 0) failure = errno;
    if (!failure && duplicate(request->stdin_fd, 0) < 0) failure = errno;
    if (!failure && duplicate(request->stdout_fd, 1) < 0) failure = errno;
    if (!failure && duplicate(request->stderr_fd, 2) < 0) failure = errno;
    if (!failure) syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    if (!failure && request->directory != NULL && syscall(SYS_chdir, request->directory) != 0) failure = errno;
    if (!failure && request->gid >= 0) {
        gid_t group = (gid_t)request->gid;
        if (syscall(SYS_setgroups, 1, &group) != 0 || syscall(SYS_setresgid, group, group, group) != 0) failure = errno;
    }
    if (!failure && request->uid >= 0) {
        uid_t user = (uid_t)request->uid;
        if (syscall(SYS_setresuid, user, user, user) != 0) failure = errno;
    }
    if (!failure) {
        syscall(SYS_execve, request->path, request->argv, request->envp);
        failure = errno;
    }
    syscall(SYS_write, request->report, &failure, sizeof failure);
    syscall(SYS_exit_group, 127);
    return 127;
}

// Present only when ThreadSanitizer's runtime is linked in (a -sanitize=thread build of
// the Swift code, which does not instrument this file but does intercept clone).
extern void __tsan_init(void) __attribute__((weak));

// A CLONE_VM|CLONE_VFORK clone rather than fork: no copy of the parent's page tables,
// which for a daemon with thousands of units (and a big heap) is most of a fork's cost.
int coreos_spawn_service(const char *path, char *const argv[], char *const envp[], const char *directory,
                         int uid, int gid, int stdin_fd, int stdout_fd, int stderr_fd, int *error_number) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        *error_number = errno;
        return -1;
    }
    struct spawn_request request = {path, argv, envp, directory, uid, gid, stdin_fd, stdout_fd, stderr_fd, report[1]};
    size_t stack_size = 64 * 1024;
    char *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        *error_number = errno;
        close(report[0]);
        close(report[1]);
        return -1;
    }
    pid_t pid;
    if (__tsan_init) {
        // ThreadSanitizer's clone interceptor treats a CLONE_VM child as a fork and trips
        // its own checks; under it the child is an ordinary fork running the same syscalls.
        pid = fork();
        if (pid == 0) spawn_child(&request);
    } else {
        pid = clone(spawn_child, stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &request);
    }
    int clone_error = errno;
    munmap(stack, stack_size);
    close(report[1]);
    if (pid < 0) {
        *error_number = clone_error;
        close(report[0]);
        return -1;
    }
    int failure = 0;
    ssize_t got;
    do {
        got = read(report[0], &failure, sizeof failure);
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof failure) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        *error_number = failure;
        return -1;
    }
    return pid;
}

int coreos_pidfd_open(int pid) { return (int)syscall(SYS_pidfd_open, pid, 0U); }

int coreos_reap(int pid, int *exited, int *code) {
    int status;
    pid_t got;
    do {
        got = waitpid(pid, &status, WNOHANG);
    } while (got < 0 && errno == EINTR);
    if (got <= 0) return got;
    if (WIFEXITED(status)) {
        *exited = 1;
        *code = WEXITSTATUS(status);
    } else {
        *exited = 0;
        *code = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    return got;
}

int coreos_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int coreos_epoll_watch(int epoll, int fd) {
    struct epoll_event event = {.events = EPOLLIN | EPOLLHUP | EPOLLRDHUP, .data.fd = fd};
    return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
}

int coreos_epoll_unwatch(int epoll, int fd) { return epoll_ctl(epoll, EPOLL_CTL_DEL, fd, NULL); }

int coreos_epoll_wait(int epoll, int *fds, int capacity) {
    struct epoll_event events[64];
    if (capacity > 64) capacity = 64;
    int count = epoll_wait(epoll, events, capacity, -1);
    for (int index = 0; index < count; index++) fds[index] = events[index].data.fd;
    return count;
}

int coreos_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
