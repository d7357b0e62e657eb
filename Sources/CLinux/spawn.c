#define _GNU_SOURCE
#include "CLinux.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// The child runs only async-signal-safe calls between fork and exec: the parent is
// multithreaded (SwiftNIO, Swift concurrency), so nothing that may take a lock.
int coreos_spawn_service(const char *path, char *const argv[], char *const envp[], const char *directory,
                         int uid, int gid, int stdin_fd, int stdout_fd, int stderr_fd, int *error_number) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        *error_number = errno;
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        *error_number = errno;
        close(report[0]);
        close(report[1]);
        return -1;
    }
    if (pid == 0) {
        int failure = 0;
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        for (int signal_number = 1; signal_number < NSIG; signal_number++) {
            if (signal_number != SIGKILL && signal_number != SIGSTOP) signal(signal_number, SIG_DFL);
        }
        if (setsid() < 0) failure = errno;
        if (!failure && dup2(stdin_fd, 0) < 0) failure = errno;
        if (!failure && dup2(stdout_fd, 1) < 0) failure = errno;
        if (!failure && dup2(stderr_fd, 2) < 0) failure = errno;
        if (!failure) syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
        if (!failure && directory != NULL && chdir(directory) != 0) failure = errno;
        if (!failure && gid >= 0) {
            gid_t group = (gid_t)gid;
            if (setgroups(1, &group) != 0 || setgid(group) != 0) failure = errno;
        }
        if (!failure && uid >= 0 && setuid((uid_t)uid) != 0) failure = errno;
        if (!failure) {
            execve(path, argv, envp);
            failure = errno;
        }
        ssize_t ignored = write(report[1], &failure, sizeof failure);
        (void)ignored;
        _exit(127);
    }
    close(report[1]);
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
