/*
 * The red-team probe: one hostile action per run, chosen by argv[1], run inside the sandbox by
 * tests/suite/redteam*.rs (compiled there with gcc at test time). It prints one line,
 * `probe: ok` or `probe: errno=N` (or `probe: <data>` for reads), and exits 0; the tests judge
 * the sandbox by what changed outside, and use this line only to say why.
 *
 * Raw syscalls throughout: nothing here depends on kernel or liburing headers, so the probe
 * builds wherever gcc and libc do, and asks the kernel exactly what an attacker would.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

static int report(long rc) {
    if (rc < 0) printf("probe: errno=%d\n", errno);
    else printf("probe: ok\n");
    return 0;
}

/* ---- io_uring, by hand (the layouts of linux/io_uring.h) ---- */

struct sqring_offsets { uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array, resv1; uint64_t user_addr; };
struct cqring_offsets { uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1; uint64_t user_addr; };
struct uring_params {
    uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd, resv[3];
    struct sqring_offsets sq_off;
    struct cqring_offsets cq_off;
};
struct sqe {
    uint8_t opcode, flags; uint16_t ioprio; int32_t fd;
    uint64_t off, addr; uint32_t len, op_flags; uint64_t user_data;
    uint16_t buf_index, personality; int32_t splice_fd_in; uint64_t addr3, pad;
};
struct cqe { uint64_t user_data; int32_t res; uint32_t flags; };

enum { OP_SENDMSG = 9, OP_CONNECT = 16, OP_SEND = 26, OP_SOCKET = 45 };

struct ring {
    int fd;
    uint32_t *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct sqe *sqes;
    struct cqe *cqes;
};

static int ring_open(struct ring *r) {
    struct uring_params p;
    memset(&p, 0, sizeof p);
    r->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
    if (r->fd < 0) return -1;
    size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
    size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct cqe);
    char *sq = mmap(0, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, 0);
    char *cq = mmap(0, cq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, 0x8000000);
    r->sqes = mmap(0, p.sq_entries * sizeof(struct sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, 0x10000000);
    if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED) return -1;
    r->sq_tail = (uint32_t *)(sq + p.sq_off.tail);
    r->sq_mask = (uint32_t *)(sq + p.sq_off.ring_mask);
    r->sq_array = (uint32_t *)(sq + p.sq_off.array);
    r->cq_head = (uint32_t *)(cq + p.cq_off.head);
    r->cq_tail = (uint32_t *)(cq + p.cq_off.tail);
    r->cq_mask = (uint32_t *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct cqe *)(cq + p.cq_off.cqes);
    return 0;
}

/* Submits one operation and returns its result (negative errno on failure). */
static int ring_run(struct ring *r, struct sqe *op) {
    uint32_t tail = *r->sq_tail;
    uint32_t index = tail & *r->sq_mask;
    r->sqes[index] = *op;
    r->sq_array[index] = index;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    if (syscall(__NR_io_uring_enter, r->fd, 1, 1, 1 /* GETEVENTS */, NULL, 0) < 0) return -errno;
    uint32_t head = *r->cq_head;
    if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) return -EAGAIN;
    int res = r->cqes[head & *r->cq_mask].res;
    __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
    return res;
}

static int uring_unix(const char *path) {
    struct ring r;
    if (ring_open(&r) < 0) return report(-1);
    struct sqe op;
    memset(&op, 0, sizeof op);
    op.opcode = OP_SOCKET;
    op.fd = AF_UNIX;
    op.off = SOCK_STREAM;
    int fd = ring_run(&r, &op);
    if (fd < 0) { errno = -fd; return report(-1); }
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    memset(&op, 0, sizeof op);
    op.opcode = OP_CONNECT;
    op.fd = fd;
    op.addr = (uint64_t)(uintptr_t)&addr;
    op.off = sizeof addr;
    int rc = ring_run(&r, &op);
    if (rc < 0) { errno = -rc; return report(-1); }
    memset(&op, 0, sizeof op);
    op.opcode = OP_SEND;
    op.fd = fd;
    op.addr = (uint64_t)(uintptr_t)"escaped";
    op.len = 7;
    rc = ring_run(&r, &op);
    if (rc < 0) { errno = -rc; return report(-1); }
    return report(0);
}

static int uring_udp(int port) {
    struct ring r;
    if (ring_open(&r) < 0) return report(-1);
    struct sqe op;
    memset(&op, 0, sizeof op);
    op.opcode = OP_SOCKET;
    op.fd = AF_INET;
    op.off = SOCK_DGRAM;
    int fd = ring_run(&r, &op);
    if (fd < 0) { errno = -fd; return report(-1); }
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct iovec iov = { .iov_base = "escaped", .iov_len = 7 };
    struct msghdr msg = { .msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov, .msg_iovlen = 1 };
    memset(&op, 0, sizeof op);
    op.opcode = OP_SENDMSG;
    op.fd = fd;
    op.addr = (uint64_t)(uintptr_t)&msg;
    int rc = ring_run(&r, &op);
    if (rc < 0) { errno = -rc; return report(-1); }
    return report(0);
}

/* ---- sockets ---- */

static socklen_t unix_addr(struct sockaddr_un *addr, const char *path, int abstract) {
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n > sizeof addr->sun_path - 2) n = sizeof addr->sun_path - 2;
    memcpy(addr->sun_path + (abstract ? 1 : 0), path, n);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (abstract ? 1 : 0));
}

static int connect_unix(const char *path, int abstract) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return report(-1);
    struct sockaddr_un addr;
    socklen_t len = unix_addr(&addr, path, abstract);
    if (connect(fd, (struct sockaddr *)&addr, len) < 0) return report(-1);
    return report(write(fd, "escaped", 7));
}

static int dgram_unix(const char *path, int pair) {
    int fd, fds[2];
    if (pair) {
        if (socketpair(AF_UNIX, SOCK_DGRAM, 0, fds) < 0) return report(-1);
        fd = fds[0];
    } else {
        fd = socket(AF_UNIX, SOCK_DGRAM, 0);
        if (fd < 0) return report(-1);
    }
    struct sockaddr_un addr;
    socklen_t len = unix_addr(&addr, path, 0);
    struct iovec iov = { .iov_base = "escaped", .iov_len = 7 };
    struct msghdr msg = { .msg_name = &addr, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1 };
    return report(sendmsg(fd, &msg, 0));
}

static int udp(int family, int port) {
    int fd = socket(family, SOCK_DGRAM, 0);
    if (fd < 0) return report(-1);
    if (family == AF_INET6) {
        struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        return report(sendto(fd, "escaped", 7, 0, (struct sockaddr *)&to, sizeof to));
    }
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return report(sendto(fd, "escaped", 7, 0, (struct sockaddr *)&to, sizeof to));
}

static int tcp(int family, int port) {
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0) return report(-1);
    if (family == AF_INET6) {
        struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        return report(connect(fd, (struct sockaddr *)&to, sizeof to));
    }
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return report(connect(fd, (struct sockaddr *)&to, sizeof to));
}

/* ---- processes ---- */

static int on_pid(const char *action, pid_t pid) {
    if (!strcmp(action, "kill")) return report(kill(pid, SIGKILL));
    if (!strcmp(action, "pidfd-kill")) {
        int fd = (int)syscall(__NR_pidfd_open, pid, 0);
        if (fd < 0) return report(-1);
        return report(syscall(__NR_pidfd_send_signal, fd, SIGKILL, NULL, 0));
    }
    if (!strcmp(action, "prlimit-cpu")) {
        struct rlimit limit = { 0, 0 };
        return report(prlimit(pid, RLIMIT_CPU, &limit, NULL));
    }
    if (!strcmp(action, "renice")) return report(setpriority(PRIO_PROCESS, pid, 19));
    if (!strcmp(action, "affinity")) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        return report(sched_setaffinity(pid, sizeof set, &set));
    }
    if (!strcmp(action, "ioprio")) /* IOPRIO_WHO_PROCESS, class idle */
        return report(syscall(__NR_ioprio_set, 1, pid, 3 << 13));
    if (!strcmp(action, "ptrace")) return report(syscall(__NR_ptrace, 16 /* ATTACH */, pid, 0, 0));
    if (!strcmp(action, "environ")) {
        char path[64], buf[4096];
        snprintf(path, sizeof path, "/proc/%d/environ", pid);
        int fd = open(path, O_RDONLY);
        if (fd < 0) return report(-1);
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n < 0) return report(-1);
        for (ssize_t i = 0; i < n; i++) if (!buf[i]) buf[i] = ' ';
        buf[n] = 0;
        printf("probe: read %s\n", buf);
        return 0;
    }
    if (!strcmp(action, "vm-read")) {
        char buf[8];
        struct iovec local = { buf, sizeof buf }, remote = { (void *)0x400000, sizeof buf };
        return report(syscall(__NR_process_vm_readv, pid, &local, 1, &remote, 1, 0));
    }
    if (!strcmp(action, "sigio")) {
        int fds[2];
        if (pipe(fds) < 0) return report(-1);
        if (fcntl(fds[0], F_SETOWN, pid) < 0) return report(-1);
        if (fcntl(fds[0], F_SETSIG, SIGKILL) < 0) return report(-1);
        if (fcntl(fds[0], F_SETFL, O_ASYNC) < 0) return report(-1);
        return report(write(fds[1], "x", 1));
    }
    printf("probe: unknown action %s\n", action);
    return 0;
}

/* ---- files and mounts ---- */

static int daemon_writer(const char *file) {
    pid_t first = fork();
    if (first < 0) return report(-1);
    if (first > 0) {
        waitpid(first, NULL, 0);
        return report(0);
    }
    setsid();
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    if (fork() != 0) _exit(0);
    int null = open("/dev/null", O_RDWR);
    for (int std = 0; std < 3; std++) dup2(null, std);
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT, 0644);
    for (int i = 0; i < 400; i++) { /* 20 s at most */
        if (write(fd, ".", 1) < 0) _exit(1);
        usleep(50000);
    }
    _exit(0);
}

static int fs_action(const char *action, const char *path, const char *arg) {
    if (!strcmp(action, "write")) {
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
        if (fd < 0) return report(-1);
        return report(write(fd, "escaped\n", 8));
    }
    if (!strcmp(action, "chmod")) return report(chmod(path, 0777));
    if (!strcmp(action, "chown")) return report(chown(path, 1234, 1234));
    if (!strcmp(action, "chgrp-own")) return report(chown(path, -1, getgid()));
    if (!strcmp(action, "utimes")) {
        struct timeval times[2] = { { 1, 0 }, { 1, 0 } };
        return report(utimes(path, times));
    }
    if (!strcmp(action, "setxattr")) return report(setxattr(path, "user.redteam", "x", 1, 0));
    if (!strcmp(action, "setcap")) {
        /* VFS_CAP_REVISION_2 with CAP_SYS_ADMIN permitted+effective */
        uint32_t cap[5] = { 0x02000001, 1u << 21, 0, 0, 0 };
        return report(setxattr(path, "security.capability", cap, sizeof cap, 0));
    }
    if (!strcmp(action, "chattr")) {
        int fd = open(path, O_RDONLY | O_NONBLOCK);
        if (fd < 0) return report(-1);
        int flags = 0;
        if (ioctl(fd, 0x80086601 /* FS_IOC_GETFLAGS */, &flags) < 0) return report(-1);
        flags |= 0x20; /* FS_APPEND_FL */
        return report(ioctl(fd, 0x40086602 /* FS_IOC_SETFLAGS */, &flags));
    }
    if (!strcmp(action, "truncate")) return report(truncate(path, 0));
    if (!strcmp(action, "reopen")) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) return report(-1);
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        int w = open(proc, O_WRONLY | O_APPEND);
        if (w < 0) return report(-1);
        return report(write(w, "escaped\n", 8));
    }
    if (!strcmp(action, "link")) return report(link(path, arg));
    if (!strcmp(action, "rename")) return report(rename(path, arg));
    if (!strcmp(action, "unlink")) return report(unlink(path));
    if (!strcmp(action, "rmdir")) return report(rmdir(path));
    if (!strcmp(action, "mkdir")) return report(mkdir(path, 0755));
    if (!strcmp(action, "symlink")) return report(symlink(arg, path));
    if (!strcmp(action, "swap-symlink")) {
        if (unlink(path) < 0) return report(-1);
        return report(symlink(arg, path));
    }
    if (!strcmp(action, "replant")) { /* replace a (placeholder) directory with a planted one */
        if (rmdir(path) < 0 && unlink(path) < 0) return report(-1);
        if (mkdir(path, 0755) < 0) return report(-1);
        char file[4096];
        snprintf(file, sizeof file, "%s/config", path);
        int fd = open(file, O_WRONLY | O_CREAT, 0644);
        if (fd < 0) return report(-1);
        return report(write(fd, "[core]\n\tfsmonitor = touch /tmp/pwned\n", 36));
    }
    if (!strcmp(action, "mknod-blk")) return report(mknod(path, S_IFBLK | 0666, makedev(7, 0)));
    if (!strcmp(action, "setuid-chmod")) return report(chmod(path, 04755));
    if (!strcmp(action, "setuid-create")) return report(open(path, O_CREAT | O_WRONLY, 04755));
    if (!strcmp(action, "umount")) return report(umount2(path, MNT_DETACH));
    if (!strcmp(action, "remount")) return report(mount(NULL, path, NULL, MS_REMOUNT | MS_BIND, NULL));
    if (!strcmp(action, "bind-over")) return report(mount(arg, path, NULL, MS_BIND, NULL));
    if (!strcmp(action, "mount-setattr")) {
        uint64_t attr[4] = { 0, 1 /* clear MOUNT_ATTR_RDONLY */, 0, 0 };
        return report(syscall(__NR_mount_setattr, AT_FDCWD, path, 0x8000 /* AT_RECURSIVE */, attr, sizeof attr));
    }
    if (!strcmp(action, "open-tree")) {
        int fd = (int)syscall(__NR_open_tree, AT_FDCWD, path, 1 /* OPEN_TREE_CLONE */);
        if (fd < 0) return report(-1);
        uint64_t attr[4] = { 0, 1, 0, 0 };
        if (syscall(__NR_mount_setattr, fd, "", 0x1000 /* AT_EMPTY_PATH */, attr, sizeof attr) < 0) return report(-1);
        return report(syscall(__NR_move_mount, fd, "", AT_FDCWD, path, 4 /* F_EMPTY_PATH */));
    }
    if (!strcmp(action, "fsopen")) {
        int fs = (int)syscall(__NR_fsopen, "tmpfs", 0);
        if (fs < 0) return report(-1);
        if (syscall(__NR_fsconfig, fs, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0) < 0) return report(-1);
        int mnt = (int)syscall(__NR_fsmount, fs, 0, 0);
        if (mnt < 0) return report(-1);
        return report(syscall(__NR_move_mount, mnt, "", AT_FDCWD, path, 4));
    }
    if (!strcmp(action, "userns-remount")) {
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) return report(-1);
        return report(mount(NULL, path, NULL, MS_REMOUNT | MS_BIND, NULL));
    }
    if (!strcmp(action, "daemon")) return daemon_writer(path);
    if (!strcmp(action, "core-pattern")) {
        int fd = open("/proc/sys/kernel/core_pattern", O_WRONLY);
        if (fd < 0) return report(-1);
        return report(write(fd, path, strlen(path)));
    }
    return -1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) { printf("probe: usage\n"); return 2; }
    const char *action = argv[1];
    const char *arg1 = argc > 2 ? argv[2] : "";
    const char *arg2 = argc > 3 ? argv[3] : "";
    if (!strcmp(action, "uring-unix")) return uring_unix(arg1);
    if (!strcmp(action, "uring-udp")) return uring_udp(atoi(arg1));
    if (!strcmp(action, "connect-unix")) return connect_unix(arg1, 0);
    if (!strcmp(action, "connect-abstract")) return connect_unix(arg1, 1);
    if (!strcmp(action, "dgram-unix")) return dgram_unix(arg1, 0);
    if (!strcmp(action, "dgram-pair-unix")) return dgram_unix(arg1, 1);
    if (!strcmp(action, "udp")) return udp(AF_INET, atoi(arg1));
    if (!strcmp(action, "udp6")) return udp(AF_INET6, atoi(arg1));
    if (!strcmp(action, "tcp")) return tcp(AF_INET, atoi(arg1));
    if (!strcmp(action, "tcp6")) return tcp(AF_INET6, atoi(arg1));
    if (!strcmp(action, "netlink")) return report(socket(AF_NETLINK, SOCK_RAW, 0));
    if (!strcmp(action, "raw")) return report(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
    if (!strcmp(action, "packet")) return report(socket(AF_PACKET, SOCK_RAW, 0));
    if (!strcmp(action, "sysv-shm")) { /* a host process's System V segment, by key */
        int id = shmget((key_t)atoi(arg1), 0, 0);
        if (id < 0) return report(-1);
        char *mem = shmat(id, NULL, 0);
        if (mem == (void *)-1) return report(-1);
        memcpy(mem, "escaped", 8);
        return report(0);
    }
    if (!strcmp(action, "write-fd")) /* a descriptor inherited from whoever started us */
        return report(write(atoi(arg1), "escaped\n", 8));
    if (!strcmp(action, "socketpair-send")) {
        int fds[2];
        char buf[4];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0) return report(-1);
        if (send(fds[0], "ping", 4, 0) != 4) return report(-1);
        return report(recv(fds[1], buf, 4, 0) == 4 && !memcmp(buf, "ping", 4) ? 0 : -1);
    }
    if (!strcmp(action, "bpf")) {
        uint32_t attr[8] = { 2 /* BPF_MAP_TYPE_ARRAY */, 4, 4, 1, 0, 0, 0, 0 };
        return report(syscall(__NR_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr));
    }
    if (!strcmp(action, "perf")) {
        uint32_t attr[32];
        memset(attr, 0, sizeof attr);
        attr[0] = 1 /* PERF_TYPE_SOFTWARE */;
        attr[1] = 128 /* size */;
        return report(syscall(__NR_perf_event_open, attr, 0, -1, -1, 0));
    }
    if (!strcmp(action, "keyctl"))
        return report(syscall(__NR_add_key, "user", "codex-lite-redteam", "x", 1, -4 /* @u */));
    if (!strcmp(action, "reboot")) /* a bad magic: EINVAL once the capability check passed */
        return report(syscall(__NR_reboot, 0xdead, 0xbeef, 0, NULL));
    if (!strcmp(action, "clock")) { /* a bad time zone: EINVAL once the capability check passed */
        struct timezone tz = { 9999, 0 };
        return report(settimeofday(NULL, &tz));
    }
    if (!strcmp(action, "swapon")) return report(syscall(__NR_swapon, "/nonexistent-swap", 0));
    if (!strcmp(action, "init-module")) return report(syscall(__NR_init_module, NULL, 0, ""));
    if (!strcmp(action, "fanotify")) return report(syscall(__NR_fanotify_init, 0, 0));
    if (!strcmp(action, "sethostname")) return report(sethostname(arg1, strlen(arg1)));
    if (!strcmp(action, "userns")) return report(unshare(CLONE_NEWUSER));
    if (!strcmp(action, "cgroup-mkdir")) return report(mkdir(arg1, 0755));
    if (!strcmp(action, "tiocsti")) {
        char c = 'X';
        return report(ioctl(0, TIOCSTI, &c));
    }
    if (!strcmp(action, "tioclinux")) {
        char sub = 6; /* TIOCL_GETSHIFTSTATE: harmless if it ever passed */
        return report(ioctl(0, TIOCLINUX, &sub));
    }
    if (!strcmp(action, "caps")) {
        FILE *f = fopen("/proc/self/status", "r");
        char line[256];
        printf("probe:");
        while (f && fgets(line, sizeof line, f))
            if (!strncmp(line, "Cap", 3)) { line[strcspn(line, "\n")] = 0; printf(" %s", line); }
        printf("\n");
        return 0;
    }
    const char *pid_actions[] = { "kill", "pidfd-kill", "prlimit-cpu", "renice", "affinity", "ioprio",
                                  "ptrace", "environ", "vm-read", "sigio", NULL };
    for (int i = 0; pid_actions[i]; i++)
        if (!strcmp(action, pid_actions[i])) return on_pid(action, (pid_t)atoi(arg1));
    if (fs_action(action, arg1, arg2) == 0) return 0;
    printf("probe: unknown action %s\n", action);
    return 0;
}
