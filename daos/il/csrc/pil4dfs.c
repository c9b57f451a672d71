/*
 * libpil4dfs.so: GoDAOS's interception library (DAOS's libioil/libpil4dfs).
 *
 *   LD_PRELOAD=bin/libpil4dfs.so prog ...
 *
 * Files are opened through the real open, so every descriptor is a real one
 * on the dfuse mount. When a regular file opened without O_APPEND is on a
 * FUSE file system whose daemon answers DFUSE_IOCTL_IL_INFO (dfuse), the
 * descriptor is "intercepted": read, write, pread, pwrite, readv, writev,
 * preadv, pwritev, lseek(SEEK_END), fsync and fdatasync on it go straight to
 * the file's DAOS byte array through libgodaos_il.so (the Go client, loaded
 * at the first read or write of such a file), not through FUSE. Everything
 * else goes to the kernel as before.
 *
 * The kernel keeps the file offset: an intercepted read or write takes it
 * with lseek(SEEK_CUR) and moves it with lseek(SEEK_SET), both answered by
 * the kernel without asking dfuse. So a descriptor inherited by a child
 * (fork, exec, posix_spawn) or duplicated (dup, dup2, F_DUPFD) sees the
 * right offset whoever moved it, without the library having to write its
 * own offset back first.
 *
 * What the kernel does not see are the sizes and times of files written
 * directly. After such writes, close and fsync (and fork, and any call that
 * gives the descriptor's data to the kernel: mmap, sendfile, splice) first
 * call futimens(fd, {UTIME_OMIT, UTIME_NOW}) through dfuse: dfuse stores the
 * mtime in DFS, and its reply gives the kernel the new size (which also
 * drops the page cache of a file whose size changed). fstat of a descriptor
 * written directly reports the array's size.
 *
 * Calls that would let the kernel use the descriptor's data (mmap,
 * sendfile, splice, preadv2/pwritev2 with flags, lseek SEEK_DATA/SEEK_HOLE,
 * fcntl F_SETFL with O_APPEND) first stop intercepting the descriptor (the
 * "fallback"); copy_file_range on it fails with EXDEV, which makes cp and
 * cat copy with read and write. After fork, the child of a process that
 * has loaded Go intercepts nothing (the Go runtime does not survive fork;
 * the kernel descriptors work). docs/design/intercept.md has the rest.
 *
 * Environment: GODAOS_IL_REPORT=1 prints per-process counts to stderr at
 * exit (=FILE appends them to FILE); GODAOS_IL_DISABLE=1 intercepts
 * nothing; GODAOS_IL_LIB=PATH names libgodaos_il.so (default: next to this
 * library); GODAOS_IL_DEBUG=1 says why files are not intercepted.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dfuse_il.h"

#define EXPORT __attribute__((visibility("default")))
#define FUSE_SUPER_MAGIC 0x65735546
#define MAX_FDS 65536

/* ---- the real functions ---- */

static void *resolve(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (p == NULL) {
		/* nothing sensible to fall back to */
		fprintf(stderr, "libpil4dfs: no %s in the libraries after this one: %s\n", name, dlerror());
		abort();
	}
	return p;
}

#define DECLARE_REAL(name) static __typeof__(&name) real_##name
/* resolved on first use: a wrapper may run before this library's
 * constructor (from another library's) */
#define REAL(name)                                                                                                     \
	({                                                                                                             \
		if (real_##name == NULL)                                                                               \
			real_##name = (__typeof__(&name))resolve(#name);                                               \
		real_##name;                                                                                           \
	})

/* glibc's fortified opens (_FORTIFY_SOURCE), not in its headers */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

DECLARE_REAL(open);
DECLARE_REAL(open64);
DECLARE_REAL(openat);
DECLARE_REAL(openat64);
DECLARE_REAL(creat);
DECLARE_REAL(creat64);
DECLARE_REAL(__open_2);
DECLARE_REAL(__open64_2);
DECLARE_REAL(__openat_2);
DECLARE_REAL(__openat64_2);
DECLARE_REAL(read);
DECLARE_REAL(write);
DECLARE_REAL(pread);
DECLARE_REAL(pread64);
DECLARE_REAL(pwrite);
DECLARE_REAL(pwrite64);
DECLARE_REAL(readv);
DECLARE_REAL(writev);
DECLARE_REAL(preadv);
DECLARE_REAL(preadv64);
DECLARE_REAL(pwritev);
DECLARE_REAL(pwritev64);
DECLARE_REAL(preadv2);
DECLARE_REAL(pwritev2);
DECLARE_REAL(lseek);
DECLARE_REAL(lseek64);
DECLARE_REAL(fsync);
DECLARE_REAL(fdatasync);
DECLARE_REAL(fstat);
DECLARE_REAL(fstat64);
DECLARE_REAL(close);
DECLARE_REAL(close_range);
DECLARE_REAL(fclose);
DECLARE_REAL(dup);
DECLARE_REAL(dup2);
DECLARE_REAL(dup3);
DECLARE_REAL(fcntl);
DECLARE_REAL(fcntl64);
DECLARE_REAL(mmap);
DECLARE_REAL(mmap64);
DECLARE_REAL(sendfile);
DECLARE_REAL(sendfile64);
DECLARE_REAL(splice);
DECLARE_REAL(copy_file_range);

/* ---- the Go library ---- */

static int (*go_open)(const uint8_t *pool, const uint8_t *cont, uint64_t hi, uint64_t lo, uint64_t chunk, int writable,
		      int64_t *h);
static ssize_t (*go_pread)(int64_t h, void *buf, size_t n, int64_t off);
static ssize_t (*go_pwrite)(int64_t h, const void *buf, size_t n, int64_t off);
static int (*go_size)(int64_t h, uint64_t *size);
static int (*go_close)(int64_t h);
static void (*go_fini)(void);

static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;
static int go_state; /* 0 not loaded, 1 loaded, -1 failed */

/* enabled is cleared by GODAOS_IL_DISABLE and in the child of a fork of a
 * process that has loaded Go. */
static int enabled = 1;
static int debug;
static __thread int in_il; /* this thread is inside the library: pass everything through */

#define dbg(...)                                                                                                       \
	do {                                                                                                           \
		if (debug)                                                                                             \
			fprintf(stderr, "libpil4dfs[%d]: ", (int)getpid()), fprintf(stderr, __VA_ARGS__);              \
	} while (0)

static int load_go(void)
{
	int st = __atomic_load_n(&go_state, __ATOMIC_ACQUIRE);
	if (st != 0)
		return st > 0 ? 0 : -1;
	pthread_mutex_lock(&load_mu);
	if (go_state == 0) {
		char path[PATH_MAX];
		const char *env = getenv("GODAOS_IL_LIB");
		Dl_info info;
		if (env != NULL && env[0] != '\0') {
			snprintf(path, sizeof(path), "%s", env);
		} else if (dladdr((void *)&load_go, &info) != 0 && info.dli_fname != NULL) {
			char self[PATH_MAX];
			snprintf(self, sizeof(self), "%s", info.dli_fname);
			snprintf(path, sizeof(path), "%s/libgodaos_il.so", dirname(self));
		} else {
			snprintf(path, sizeof(path), "libgodaos_il.so");
		}
		in_il++;
		void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		in_il--;
		int st = -1;
		if (lib == NULL) {
			dbg("cannot load %s: %s\n", path, dlerror());
		} else {
			go_open = dlsym(lib, "godaos_il_open");
			go_pread = dlsym(lib, "godaos_il_pread");
			go_pwrite = dlsym(lib, "godaos_il_pwrite");
			go_size = dlsym(lib, "godaos_il_size");
			go_close = dlsym(lib, "godaos_il_close");
			go_fini = dlsym(lib, "godaos_il_fini");
			if (go_open && go_pread && go_pwrite && go_size && go_close && go_fini)
				st = 1;
			else
				dbg("%s lacks the godaos_il_* functions\n", path);
		}
		__atomic_store_n(&go_state, st, __ATOMIC_RELEASE);
	}
	st = go_state;
	pthread_mutex_unlock(&load_mu);
	return st > 0 ? 0 : -1;
}

/* ---- counters (GODAOS_IL_REPORT) ---- */

enum {
	C_OPEN,
	C_READ,
	C_WRITE,
	C_PREAD,
	C_PWRITE,
	C_READV,
	C_WRITEV,
	C_PREADV,
	C_PWRITEV,
	C_LSEEK,
	C_FSYNC,
	C_FSTAT,
	C_DUP,
	C_FALLBACK,
	C_DECLINED,
	C_BYTES_READ,
	C_BYTES_WRITTEN,
	C_N
};
static const char *counter_names[C_N] = {"open",   "read",    "write", "pread", "pwrite",   "readv",
					 "writev", "preadv",  "pwritev", "lseek", "fsync",    "fstat",
					 "dup",    "fallback", "declined", "bytes_read", "bytes_written"};
static uint64_t counters[C_N];

static void count(int c, uint64_t n) { __atomic_fetch_add(&counters[c], n, __ATOMIC_RELAXED); }

/* ---- intercepted descriptors ---- */

/* An open file description the library reads and writes: shared by the
 * descriptors dup'ed from one another, as the kernel shares the offset. */
struct ilfile {
	pthread_mutex_t mu; /* serializes the offset's take and move, and the Go open */
	struct dfuse_il_info info;
	int ready; /* 0: the Go handle is not open yet, 1: h is, -1: it cannot be */
	int64_t h;
	int accmode;
	int refs;  /* descriptors + calls in progress; under tbl_mu */
	int dirty; /* written directly since the kernel last heard */
};

static pthread_mutex_t tbl_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ilfile *tbl[MAX_FDS];
static int n_intercepted; /* descriptors in tbl: a quick "none" */

static struct ilfile *get(int fd)
{
	if (fd < 0 || fd >= MAX_FDS || in_il || !__atomic_load_n(&enabled, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&n_intercepted, __ATOMIC_RELAXED) == 0)
		return NULL;
	pthread_mutex_lock(&tbl_mu);
	struct ilfile *f = tbl[fd];
	if (f != NULL)
		f->refs++;
	pthread_mutex_unlock(&tbl_mu);
	return f;
}

static void put(struct ilfile *f)
{
	pthread_mutex_lock(&tbl_mu);
	int last = --f->refs == 0;
	pthread_mutex_unlock(&tbl_mu);
	if (last) {
		if (f->ready > 0) {
			in_il++;
			go_close(f->h);
			in_il--;
		}
		pthread_mutex_destroy(&f->mu);
		free(f);
	}
}

/* set makes fd stand for f (a new reference), or for nothing. */
static void set(int fd, struct ilfile *f)
{
	pthread_mutex_lock(&tbl_mu);
	struct ilfile *old = tbl[fd];
	tbl[fd] = f;
	if (f != NULL)
		f->refs++;
	n_intercepted += (f != NULL) - (old != NULL);
	pthread_mutex_unlock(&tbl_mu);
	if (old != NULL)
		put(old);
}

/* forget drops what the table says about a descriptor number the kernel
 * has just handed out: an entry there is stale, left by a close that did
 * not go through close() (a raw system call). */
static void forget(int fd)
{
	if (fd < 0 || fd >= MAX_FDS || __atomic_load_n(&n_intercepted, __ATOMIC_RELAXED) == 0 ||
	    __atomic_load_n(&tbl[fd], __ATOMIC_RELAXED) == NULL)
		return;
	set(fd, NULL);
}

/* refresh tells dfuse, and through its reply the kernel, about direct
 * writes: dfuse stores the mtime, the kernel takes the new size. */
static void refresh(int fd, struct ilfile *f)
{
	if (!__atomic_exchange_n(&f->dirty, 0, __ATOMIC_ACQ_REL))
		return;
	struct timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
	int e = errno;
	if (futimens(fd, ts) != 0)
		dbg("futimens(%d) after direct writes: %s\n", fd, strerror(errno));
	errno = e;
}

/* detach stops intercepting fd, telling the kernel what it must know first
 * (close, dup2 onto it, and the fallback). */
static void detach(int fd)
{
	struct ilfile *f = get(fd);
	if (f == NULL)
		return;
	refresh(fd, f);
	set(fd, NULL);
	put(f);
}

static void fallback(int fd)
{
	struct ilfile *f = get(fd);
	if (f == NULL) /* the common case: nothing to do */
		return;
	refresh(fd, f);
	set(fd, NULL);
	put(f);
	count(C_FALLBACK, 1);
}

/* use is get for a call that reads or writes: the Go client is loaded and
 * the object opened on the first such call, not at open, so that a process
 * that only opens files (or lays them out before it forks workers, as fio
 * does) need not load Go. If that fails, the descriptor falls back to the
 * kernel and use returns NULL. */
static struct ilfile *use(int fd)
{
	struct ilfile *f = get(fd);
	if (f == NULL || __atomic_load_n(&f->ready, __ATOMIC_ACQUIRE) > 0)
		return f;
	pthread_mutex_lock(&f->mu);
	if (f->ready == 0) {
		int rc = -ENOSYS;
		in_il++;
		if (load_go() == 0) {
			struct dfuse_il_info *i = &f->info;
			rc = go_open(i->pool, i->cont, i->oid_hi, i->oid_lo, i->chunk_size, f->accmode != O_RDONLY, &f->h);
		}
		in_il--;
		if (rc != 0)
			dbg("fd %d: the Go client cannot open the object: %s\n", fd, strerror(-rc));
		__atomic_store_n(&f->ready, rc == 0 ? 1 : -1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&f->mu);
	if (f->ready > 0)
		return f;
	put(f);
	fallback(fd);
	return NULL;
}

/* A cache of which devices are FUSE mounts: fstatfs on FUSE asks the
 * daemon (dfuse then asks the pool), and on NFS or Lustre the servers, so
 * it is done once per device. FUSE devices are anonymous (major 0), like
 * tmpfs's, NFS's and Lustre's; a disk's device is never FUSE and is not
 * asked. Anonymous device numbers come back after an unmount, so "not FUSE"
 * is trusted for a second only; "FUSE" for ever (a wrong "FUSE" costs one
 * ioctl that nobody answers). */
#define DEVCACHE 64
static struct {
	dev_t dev;
	int fuse;       /* 1 FUSE, -1 not, 0 empty slot */
	time_t checked; /* CLOCK_MONOTONIC_COARSE seconds, for "not" */
} devcache[DEVCACHE];
static pthread_mutex_t dev_mu = PTHREAD_MUTEX_INITIALIZER;

static time_t now_coarse(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec;
}

static int is_fuse(int fd, dev_t dev)
{
	if (major(dev) != 0)
		return 0;
	time_t now = now_coarse();
	pthread_mutex_lock(&dev_mu);
	for (int i = 0; i < DEVCACHE; i++) {
		if (devcache[i].fuse != 0 && devcache[i].dev == dev &&
		    (devcache[i].fuse > 0 || now - devcache[i].checked < 1)) {
			int r = devcache[i].fuse > 0;
			pthread_mutex_unlock(&dev_mu);
			return r;
		}
	}
	pthread_mutex_unlock(&dev_mu);
	struct statfs sfs;
	if (fstatfs(fd, &sfs) != 0)
		return 0;
	int r = (unsigned long)sfs.f_type == FUSE_SUPER_MAGIC;
	pthread_mutex_lock(&dev_mu);
	int slot = -1;
	static int next;
	for (int i = 0; i < DEVCACHE && slot < 0; i++)
		if (devcache[i].fuse != 0 && devcache[i].dev == dev)
			slot = i;
	if (slot < 0) {
		slot = next;
		next = (next + 1) % DEVCACHE;
	}
	devcache[slot].dev = dev;
	devcache[slot].fuse = r ? 1 : -1;
	devcache[slot].checked = now;
	pthread_mutex_unlock(&dev_mu);
	return r;
}

/* opened decides whether to intercept a descriptor just opened. */
static int opened(int fd, int flags)
{
	forget(fd);
	if (fd < 0 || fd >= MAX_FDS || in_il || !__atomic_load_n(&enabled, __ATOMIC_RELAXED))
		return fd;
	if (flags & (O_APPEND | O_PATH | O_DIRECTORY))
		return fd; /* appends need the kernel's end of file; the others are no data */
	int e = errno;
	in_il++;
	struct stat st;
	struct dfuse_il_info info;
	if (REAL(fstat)(fd, &st) != 0 || !S_ISREG(st.st_mode) || !is_fuse(fd, st.st_dev))
		goto out;
	memset(&info, 0, sizeof(info));
	if (ioctl(fd, DFUSE_IOCTL_IL_INFO, &info) != 0) {
		dbg("fd %d: FUSE file but no answer to the interception ioctl: %s\n", fd, strerror(errno));
		count(C_DECLINED, 1);
		goto out;
	}
	if (info.magic != DFUSE_IL_MAGIC || info.version != DFUSE_IL_VERSION || info.chunk_size == 0) {
		dbg("fd %d: ioctl answer of magic %#x version %u: not a dfuse this library knows\n", fd, info.magic,
		    info.version);
		count(C_DECLINED, 1);
		goto out;
	}
	if (__atomic_load_n(&go_state, __ATOMIC_ACQUIRE) < 0) {
		count(C_DECLINED, 1); /* no Go client in this process */
		goto out;
	}
	struct ilfile *f = calloc(1, sizeof(*f));
	if (f == NULL)
		goto out;
	pthread_mutex_init(&f->mu, NULL);
	f->info = info;
	f->accmode = flags & O_ACCMODE;
	set(fd, f); /* refs 1: the descriptor */
	count(C_OPEN, 1);
out:
	in_il--;
	errno = e;
	return fd;
}

static int has_mode(int flags) { return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE; }

#define OPEN_WRAPPER(name, realcall, ...)                                                                              \
	EXPORT int name(const char *path, int flags, ...)                                                              \
	{                                                                                                              \
		mode_t mode = 0;                                                                                       \
		if (has_mode(flags)) {                                                                                 \
			va_list ap;                                                                                    \
			va_start(ap, flags);                                                                           \
			mode = va_arg(ap, int);                                                                        \
			va_end(ap);                                                                                    \
		}                                                                                                      \
		return opened(REAL(realcall)(path, flags, mode), flags);                                               \
	}

OPEN_WRAPPER(open, open)
OPEN_WRAPPER(open64, open64)

#define OPENAT_WRAPPER(name)                                                                                           \
	EXPORT int name(int dirfd, const char *path, int flags, ...)                                                   \
	{                                                                                                              \
		mode_t mode = 0;                                                                                       \
		if (has_mode(flags)) {                                                                                 \
			va_list ap;                                                                                    \
			va_start(ap, flags);                                                                           \
			mode = va_arg(ap, int);                                                                        \
			va_end(ap);                                                                                    \
		}                                                                                                      \
		return opened(REAL(name)(dirfd, path, flags, mode), flags);                                            \
	}

OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)

EXPORT int creat(const char *path, mode_t mode)
{
	return opened(REAL(creat)(path, mode), O_CREAT | O_WRONLY | O_TRUNC);
}
EXPORT int creat64(const char *path, mode_t mode)
{
	return opened(REAL(creat64)(path, mode), O_CREAT | O_WRONLY | O_TRUNC);
}
EXPORT int __open_2(const char *path, int flags) { return opened(REAL(__open_2)(path, flags), flags); }
EXPORT int __open64_2(const char *path, int flags) { return opened(REAL(__open64_2)(path, flags), flags); }
EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	return opened(REAL(__openat_2)(dirfd, path, flags), flags);
}
EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	return opened(REAL(__openat64_2)(dirfd, path, flags), flags);
}

/* ---- data ---- */

static ssize_t fail(ssize_t r)
{
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

static ssize_t il_pread(struct ilfile *f, void *buf, size_t n, off_t off)
{
	if (f->accmode == O_WRONLY)
		return -EBADF;
	in_il++;
	ssize_t r = go_pread(f->h, buf, n, off);
	in_il--;
	if (r > 0)
		count(C_BYTES_READ, (uint64_t)r);
	return r;
}

static ssize_t il_pwrite(struct ilfile *f, const void *buf, size_t n, off_t off)
{
	if (f->accmode == O_RDONLY)
		return -EBADF;
	in_il++;
	ssize_t r = go_pwrite(f->h, buf, n, off);
	in_il--;
	if (r > 0) {
		count(C_BYTES_WRITTEN, (uint64_t)r);
		__atomic_store_n(&f->dirty, 1, __ATOMIC_RELEASE);
	}
	return r;
}

/* il_preadv and il_pwritev move iovecs one by one, stopping at a short
 * transfer; an error after some bytes moved returns those bytes. */
static ssize_t il_iov(struct ilfile *f, const struct iovec *iov, int cnt, off_t off, int write)
{
	if (cnt < 0 || cnt > IOV_MAX)
		return -EINVAL;
	ssize_t done = 0;
	for (int i = 0; i < cnt; i++) {
		if (iov[i].iov_len == 0)
			continue;
		ssize_t r = write ? il_pwrite(f, iov[i].iov_base, iov[i].iov_len, off + done)
				  : il_pread(f, iov[i].iov_base, iov[i].iov_len, off + done);
		if (r < 0)
			return done > 0 ? done : r;
		done += r;
		if ((size_t)r < iov[i].iov_len)
			break;
	}
	return done;
}

static ssize_t il_preadv(struct ilfile *f, const struct iovec *iov, int cnt, off_t off)
{
	return il_iov(f, iov, cnt, off, 0);
}

static ssize_t il_pwritev(struct ilfile *f, const struct iovec *iov, int cnt, off_t off)
{
	return il_iov(f, iov, cnt, off, 1);
}

/* at_offset runs a transfer at the kernel's offset and moves the offset on
 * by what it moved. */
#define AT_OFFSET(f, fd, call)                                                                                         \
	({                                                                                                             \
		ssize_t _r;                                                                                            \
		pthread_mutex_lock(&(f)->mu);                                                                          \
		off_t _off = REAL(lseek)(fd, 0, SEEK_CUR);                                                             \
		if (_off < 0) {                                                                                        \
			_r = -errno;                                                                                   \
		} else {                                                                                               \
			off_t off = _off;                                                                              \
			_r = (call);                                                                                   \
			if (_r > 0 && REAL(lseek)(fd, _off + _r, SEEK_SET) < 0)                                        \
				_r = -errno;                                                                           \
		}                                                                                                      \
		pthread_mutex_unlock(&(f)->mu);                                                                        \
		_r;                                                                                                    \
	})

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	struct ilfile *f = use(fd);
	if (f == NULL)
		return REAL(read)(fd, buf, n);
	ssize_t r = AT_OFFSET(f, fd, il_pread(f, buf, n, off));
	count(C_READ, 1);
	put(f);
	return fail(r);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	struct ilfile *f = use(fd);
	if (f == NULL)
		return REAL(write)(fd, buf, n);
	ssize_t r = AT_OFFSET(f, fd, il_pwrite(f, buf, n, off));
	count(C_WRITE, 1);
	put(f);
	return fail(r);
}

#define PREAD_WRAPPER(name)                                                                                            \
	EXPORT ssize_t name(int fd, void *buf, size_t n, off_t off)                                                    \
	{                                                                                                              \
		struct ilfile *f = use(fd);                                                                            \
		if (f == NULL)                                                                                         \
			return REAL(name)(fd, buf, n, off);                                                            \
		ssize_t r = off < 0 ? -EINVAL : il_pread(f, buf, n, off);                                              \
		count(C_PREAD, 1);                                                                                     \
		put(f);                                                                                                \
		return fail(r);                                                                                        \
	}
PREAD_WRAPPER(pread)
PREAD_WRAPPER(pread64)

#define PWRITE_WRAPPER(name)                                                                                           \
	EXPORT ssize_t name(int fd, const void *buf, size_t n, off_t off)                                              \
	{                                                                                                              \
		struct ilfile *f = use(fd);                                                                            \
		if (f == NULL)                                                                                         \
			return REAL(name)(fd, buf, n, off);                                                            \
		ssize_t r = off < 0 ? -EINVAL : il_pwrite(f, buf, n, off);                                             \
		count(C_PWRITE, 1);                                                                                    \
		put(f);                                                                                                \
		return fail(r);                                                                                        \
	}
PWRITE_WRAPPER(pwrite)
PWRITE_WRAPPER(pwrite64)

EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	struct ilfile *f = use(fd);
	if (f == NULL)
		return REAL(readv)(fd, iov, cnt);
	ssize_t r = AT_OFFSET(f, fd, il_preadv(f, iov, cnt, off));
	count(C_READV, 1);
	put(f);
	return fail(r);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	struct ilfile *f = use(fd);
	if (f == NULL)
		return REAL(writev)(fd, iov, cnt);
	ssize_t r = AT_OFFSET(f, fd, il_pwritev(f, iov, cnt, off));
	count(C_WRITEV, 1);
	put(f);
	return fail(r);
}

#define PREADV_WRAPPER(name)                                                                                           \
	EXPORT ssize_t name(int fd, const struct iovec *iov, int cnt, off_t off)                                       \
	{                                                                                                              \
		struct ilfile *f = use(fd);                                                                            \
		if (f == NULL)                                                                                         \
			return REAL(name)(fd, iov, cnt, off);                                                          \
		ssize_t r = off < 0 ? -EINVAL : il_preadv(f, iov, cnt, off);                                           \
		count(C_PREADV, 1);                                                                                    \
		put(f);                                                                                                \
		return fail(r);                                                                                        \
	}
PREADV_WRAPPER(preadv)
PREADV_WRAPPER(preadv64)

#define PWRITEV_WRAPPER(name)                                                                                          \
	EXPORT ssize_t name(int fd, const struct iovec *iov, int cnt, off_t off)                                       \
	{                                                                                                              \
		struct ilfile *f = use(fd);                                                                            \
		if (f == NULL)                                                                                         \
			return REAL(name)(fd, iov, cnt, off);                                                          \
		ssize_t r = off < 0 ? -EINVAL : il_pwritev(f, iov, cnt, off);                                          \
		count(C_PWRITEV, 1);                                                                                   \
		put(f);                                                                                                \
		return fail(r);                                                                                        \
	}
PWRITEV_WRAPPER(pwritev)
PWRITEV_WRAPPER(pwritev64)

/* preadv2/pwritev2: without flags they are preadv/pwritev (offset -1: the
 * file offset); RWF_* flags are the kernel's business. */
EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	if (flags != 0)
		fallback(fd);
	struct ilfile *f = use(fd);
	if (f == NULL)
		return REAL(preadv2)(fd, iov, cnt, off, flags);
	ssize_t r;
	if (off == -1)
		r = AT_OFFSET(f, fd, il_preadv(f, iov, cnt, off));
	else
		r = off < 0 ? -EINVAL : il_preadv(f, iov, cnt, off);
	count(C_PREADV, 1);
	put(f);
	return fail(r);
}

EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	if (flags != 0)
		fallback(fd);
	struct ilfile *f = use(fd);
	if (f == NULL)
		return REAL(pwritev2)(fd, iov, cnt, off, flags);
	ssize_t r;
	if (off == -1)
		r = AT_OFFSET(f, fd, il_pwritev(f, iov, cnt, off));
	else
		r = off < 0 ? -EINVAL : il_pwritev(f, iov, cnt, off);
	count(C_PWRITEV, 1);
	put(f);
	return fail(r);
}

/* lseek: SEEK_SET and SEEK_CUR are the kernel's (it keeps the offset);
 * SEEK_END needs the array's size, which the kernel may not know yet. */
static off_t il_lseek(int fd, off_t off, int whence, __typeof__(&lseek) real)
{
	if (whence == SEEK_DATA || whence == SEEK_HOLE)
		fallback(fd);
	if (whence != SEEK_END)
		return real(fd, off, whence);
	struct ilfile *f = use(fd);
	if (f == NULL)
		return real(fd, off, whence);
	uint64_t size;
	pthread_mutex_lock(&f->mu);
	in_il++;
	int rc = go_size(f->h, &size);
	in_il--;
	off_t r;
	if (rc != 0) {
		errno = -rc;
		r = -1;
	} else if ((off > 0 && size > (uint64_t)(INT64_MAX - off)) || (int64_t)size + off < 0) {
		errno = EINVAL;
		r = -1;
	} else {
		r = real(fd, (off_t)size + off, SEEK_SET);
	}
	pthread_mutex_unlock(&f->mu);
	count(C_LSEEK, 1);
	put(f);
	return r;
}

EXPORT off_t lseek(int fd, off_t off, int whence) { return il_lseek(fd, off, whence, REAL(lseek)); }
EXPORT off64_t lseek64(int fd, off64_t off, int whence) { return il_lseek(fd, off, whence, REAL(lseek64)); }

/* fsync: written data is durable when the write returns; what is left is
 * the mtime, which the refresh stores. */
EXPORT int fsync(int fd)
{
	struct ilfile *f = get(fd);
	if (f == NULL)
		return REAL(fsync)(fd);
	refresh(fd, f);
	count(C_FSYNC, 1);
	put(f);
	return 0;
}

EXPORT int fdatasync(int fd)
{
	struct ilfile *f = get(fd);
	if (f == NULL)
		return REAL(fdatasync)(fd);
	count(C_FSYNC, 1);
	put(f);
	return 0;
}

/* fstat: the kernel's attributes, with the array's size while direct
 * writes have not been refreshed. */
static void fix_size(int fd, struct stat *st)
{
	struct ilfile *f = get(fd);
	if (f == NULL)
		return;
	if (__atomic_load_n(&f->dirty, __ATOMIC_ACQUIRE)) {
		uint64_t size;
		in_il++;
		int rc = go_size(f->h, &size);
		in_il--;
		if (rc == 0) {
			st->st_size = (off_t)size;
			st->st_blocks = (blkcnt_t)((size + 511) / 512);
		}
		count(C_FSTAT, 1);
	}
	put(f);
}

EXPORT int fstat(int fd, struct stat *st)
{
	int r = REAL(fstat)(fd, st);
	if (r == 0)
		fix_size(fd, st);
	return r;
}

EXPORT int fstat64(int fd, struct stat64 *st)
{
	int r = REAL(fstat64)(fd, st);
	if (r == 0)
		fix_size(fd, (struct stat *)st);
	return r;
}

/* ---- descriptors ---- */

EXPORT int close(int fd)
{
	detach(fd);
	return REAL(close)(fd);
}

EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	if (!(flags & CLOSE_RANGE_CLOEXEC) && __atomic_load_n(&n_intercepted, __ATOMIC_RELAXED) > 0) {
		for (unsigned int fd = first; fd <= last && fd < MAX_FDS; fd++)
			detach((int)fd);
	}
	return REAL(close_range)(first, last, flags);
}

/* fclose closes the stream's descriptor inside libc, past close(). */
EXPORT int fclose(FILE *fp)
{
	if (fp != NULL)
		detach(fileno(fp));
	return REAL(fclose)(fp);
}

/* closefrom closes inside libc, past close_range(). */
DECLARE_REAL(closefrom);
EXPORT void closefrom(int lowfd)
{
	if (__atomic_load_n(&n_intercepted, __ATOMIC_RELAXED) > 0)
		for (int fd = lowfd < 0 ? 0 : lowfd; fd < MAX_FDS; fd++)
			detach(fd);
	REAL(closefrom)(lowfd);
}

/* Calls that hand out new descriptors the library never intercepts: a
 * number they return may still have an entry if it was closed behind
 * libc's back (a raw close system call). */
DECLARE_REAL(pipe);
DECLARE_REAL(pipe2);
DECLARE_REAL(socket);
DECLARE_REAL(socketpair);
DECLARE_REAL(accept);
DECLARE_REAL(accept4);
DECLARE_REAL(eventfd);
DECLARE_REAL(memfd_create);
DECLARE_REAL(epoll_create);
DECLARE_REAL(epoll_create1);
DECLARE_REAL(signalfd);
DECLARE_REAL(timerfd_create);
DECLARE_REAL(inotify_init);
DECLARE_REAL(inotify_init1);

static int fresh(int fd)
{
	forget(fd);
	return fd;
}

static int fresh2(int r, int fds[2])
{
	if (r == 0) {
		forget(fds[0]);
		forget(fds[1]);
	}
	return r;
}

EXPORT int pipe(int fds[2]) { return fresh2(REAL(pipe)(fds), fds); }
EXPORT int pipe2(int fds[2], int flags) { return fresh2(REAL(pipe2)(fds, flags), fds); }
EXPORT int socket(int domain, int type, int proto) { return fresh(REAL(socket)(domain, type, proto)); }
EXPORT int socketpair(int domain, int type, int proto, int fds[2])
{
	return fresh2(REAL(socketpair)(domain, type, proto, fds), fds);
}
EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len) { return fresh(REAL(accept)(fd, addr, len)); }
EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	return fresh(REAL(accept4)(fd, addr, len, flags));
}
EXPORT int eventfd(unsigned int initval, int flags) { return fresh(REAL(eventfd)(initval, flags)); }
EXPORT int memfd_create(const char *name, unsigned int flags) { return fresh(REAL(memfd_create)(name, flags)); }
EXPORT int epoll_create(int size) { return fresh(REAL(epoll_create)(size)); }
EXPORT int epoll_create1(int flags) { return fresh(REAL(epoll_create1)(flags)); }
EXPORT int signalfd(int fd, const sigset_t *mask, int flags) { return fresh(REAL(signalfd)(fd, mask, flags)); }
EXPORT int timerfd_create(int clock, int flags) { return fresh(REAL(timerfd_create)(clock, flags)); }
EXPORT int inotify_init(void) { return fresh(REAL(inotify_init)()); }
EXPORT int inotify_init1(int flags) { return fresh(REAL(inotify_init1)(flags)); }

/* duplicates share the open file (and offset): they are intercepted too */
static int duped(int oldfd, int newfd)
{
	if (newfd < 0 || newfd >= MAX_FDS)
		return newfd;
	struct ilfile *f = get(oldfd);
	if (f != NULL) {
		set(newfd, f);
		count(C_DUP, 1);
		put(f);
	} else {
		forget(newfd);
	}
	return newfd;
}

EXPORT int dup(int fd) { return duped(fd, REAL(dup)(fd)); }

EXPORT int dup2(int oldfd, int newfd)
{
	if (oldfd != newfd)
		detach(newfd);
	return duped(oldfd, REAL(dup2)(oldfd, newfd));
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	if (oldfd != newfd)
		detach(newfd);
	return duped(oldfd, REAL(dup3)(oldfd, newfd, flags));
}

static int il_fcntl(int fd, int cmd, unsigned long arg, int (*real)(int, int, ...))
{
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		return duped(fd, real(fd, cmd, arg));
	case F_SETFL:
		if (arg & O_APPEND)
			fallback(fd);
		break;
	}
	return real(fd, cmd, arg);
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	unsigned long arg = va_arg(ap, unsigned long);
	va_end(ap);
	return il_fcntl(fd, cmd, arg, REAL(fcntl));
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	unsigned long arg = va_arg(ap, unsigned long);
	va_end(ap);
	return il_fcntl(fd, cmd, arg, REAL(fcntl64));
}

/* ---- calls that give the kernel the descriptor's data: fall back ---- */

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!(flags & MAP_ANONYMOUS))
		fallback(fd);
	return REAL(mmap)(addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	if (!(flags & MAP_ANONYMOUS))
		fallback(fd);
	return REAL(mmap64)(addr, len, prot, flags, fd, off);
}

EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
	fallback(out);
	fallback(in);
	return REAL(sendfile)(out, in, off, n);
}

EXPORT ssize_t sendfile64(int out, int in, off64_t *off, size_t n)
{
	fallback(out);
	fallback(in);
	return REAL(sendfile64)(out, in, off, n);
}

EXPORT ssize_t splice(int in, loff_t *offin, int out, loff_t *offout, size_t n, unsigned int flags)
{
	fallback(in);
	fallback(out);
	return REAL(splice)(in, offin, out, offout, n, flags);
}

/* copy_file_range between descriptors the library reads and writes: EXDEV,
 * as between two file systems, and callers (cp, cat) copy with read and
 * write instead. */
EXPORT ssize_t copy_file_range(int in, loff_t *offin, int out, loff_t *offout, size_t n, unsigned int flags)
{
	struct ilfile *a = get(in), *b = get(out);
	if (a != NULL || b != NULL) {
		if (a != NULL)
			put(a);
		if (b != NULL)
			put(b);
		errno = EXDEV;
		return -1;
	}
	return REAL(copy_file_range)(in, offin, out, offout, n, flags);
}

/* ---- fork, start, exit ---- */

static const char *report; /* GODAOS_IL_REPORT */
static int reported;

static void before_fork(void)
{
	if (__atomic_load_n(&n_intercepted, __ATOMIC_RELAXED) == 0)
		return;
	/* the child may read the files through the kernel: give it the sizes */
	for (int fd = 0; fd < MAX_FDS; fd++) {
		if (__atomic_load_n(&tbl[fd], __ATOMIC_RELAXED) == NULL)
			continue;
		struct ilfile *f = get(fd);
		if (f != NULL) {
			refresh(fd, f);
			put(f);
		}
	}
}

static void in_child(void)
{
	/* the Go runtime's threads are not in the child: nothing may call it */
	if (__atomic_load_n(&go_state, __ATOMIC_ACQUIRE) != 0)
		__atomic_store_n(&enabled, 0, __ATOMIC_RELEASE);
	pthread_mutex_init(&tbl_mu, NULL);
	pthread_mutex_init(&dev_mu, NULL);
	pthread_mutex_init(&load_mu, NULL);
	/* the counts are per process */
	for (int i = 0; i < C_N; i++)
		counters[i] = 0;
	reported = 0;
}


__attribute__((constructor)) static void il_init(void)
{
	const char *d = getenv("GODAOS_IL_DISABLE");
	if (d != NULL && d[0] != '\0' && strcmp(d, "0") != 0)
		enabled = 0;
	d = getenv("GODAOS_IL_DEBUG");
	debug = d != NULL && d[0] != '\0' && strcmp(d, "0") != 0;
	report = getenv("GODAOS_IL_REPORT");
	if (report != NULL && (report[0] == '\0' || strcmp(report, "0") == 0))
		report = NULL;
	pthread_atfork(before_fork, NULL, in_child);
}

/* write_report prints the counts once per process: at exit, or at _exit,
 * which forked workers (fio's jobs) end with. */

static void write_report(void)
{
	if (report == NULL || __atomic_exchange_n(&reported, 1, __ATOMIC_ACQ_REL))
		return;
	char line[1024];
	int n = snprintf(line, sizeof(line), "libpil4dfs[%d]: intercepted", (int)getpid());
	uint64_t total = 0;
	for (int i = 0; i < C_N; i++) {
		uint64_t v = __atomic_load_n(&counters[i], __ATOMIC_RELAXED);
		if (i >= C_OPEN && i <= C_FSTAT)
			total += v;
		n += snprintf(line + n, sizeof(line) - n, " %s=%llu", counter_names[i], (unsigned long long)v);
	}
	n += snprintf(line + n, sizeof(line) - n, " total=%llu\n", (unsigned long long)total);
	int fd = 2;
	if (strcmp(report, "1") != 0)
		fd = REAL(open)(report, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		if (REAL(write)(fd, line, n) < 0) {
			/* nothing to do about it at exit */
		}
		if (fd != 2)
			REAL(close)(fd);
	}
}

DECLARE_REAL(_exit);

EXPORT void _exit(int status)
{
	if (__atomic_load_n(&n_intercepted, __ATOMIC_RELAXED) > 0)
		before_fork(); /* store the mtimes of what is left open */
	write_report();
	REAL(_exit)(status);
	__builtin_unreachable();
}

__attribute__((destructor)) static void il_fini(void)
{
	int go = __atomic_load_n(&go_state, __ATOMIC_ACQUIRE) > 0 && __atomic_load_n(&enabled, __ATOMIC_ACQUIRE);
	if (__atomic_load_n(&n_intercepted, __ATOMIC_RELAXED) > 0)
		before_fork(); /* descriptors left open: store their mtimes */
	write_report();
	if (go) {
		in_il++;
		go_fini();
		in_il--;
	}
}
