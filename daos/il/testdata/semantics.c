/* POSIX semantics of intercepted descriptors, run under the library on a
 * dfuse mount by TestSemantics: semantics DIR prints "ok" or the first
 * failed check. Each check is what the kernel path gives. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *dir;
static char path[4096];

static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("FAIL: ");
	vprintf(fmt, ap);
	printf(" (errno %d %s)\n", errno, strerror(errno));
	va_end(ap);
	exit(1);
}

#define CHECK(cond, ...)                                                                                               \
	do {                                                                                                           \
		if (!(cond))                                                                                           \
			fail(__VA_ARGS__);                                                                             \
	} while (0)

static const char *at(const char *name)
{
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

#define MiB (1 << 20)

static void offsets_holes_sizes(void)
{
	int fd = open(at("sem"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open");
	CHECK(write(fd, "abc", 3) == 3, "write");
	CHECK(lseek(fd, 0, SEEK_CUR) == 3, "offset after write is %ld", (long)lseek(fd, 0, SEEK_CUR));
	/* past the first chunk, leaving a hole */
	CHECK(pwrite(fd, "xyz", 3, MiB + 5) == 3, "pwrite");
	CHECK(lseek(fd, 0, SEEK_CUR) == 3, "pwrite moved the offset");
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && st.st_size == MiB + 8, "fstat size %ld, want %d", (long)st.st_size, MiB + 8);
	CHECK(lseek(fd, 0, SEEK_END) == MiB + 8, "SEEK_END");
	CHECK(lseek(fd, -8, SEEK_END) == MiB, "SEEK_END -8");
	char buf[16];
	CHECK(read(fd, buf, 16) == 8, "read at the end: short");
	CHECK(memcmp(buf, "\0\0\0\0\0xyz", 8) == 0, "hole then data");
	CHECK(read(fd, buf, 16) == 0, "read at EOF");
	CHECK(pread(fd, buf, 4, MiB + 100) == 0, "pread past EOF");
	CHECK(lseek(fd, 1, SEEK_SET) == 1, "SEEK_SET");
	char a[2], b[4];
	struct iovec iov[2] = {{a, 2}, {b, 4}};
	CHECK(readv(fd, iov, 2) == 6, "readv");
	CHECK(memcmp(a, "bc", 2) == 0 && memcmp(b, "\0\0\0\0", 4) == 0, "readv data");
	CHECK(lseek(fd, 0, SEEK_CUR) == 7, "readv offset");
	struct iovec wv[2] = {{"12", 2}, {"345", 3}};
	CHECK(lseek(fd, 10, SEEK_SET) == 10 && writev(fd, wv, 2) == 5, "writev");
	CHECK(pread(fd, buf, 5, 10) == 5 && memcmp(buf, "12345", 5) == 0, "writev data");
	CHECK(pwritev(fd, wv, 2, 20) == 5 && preadv(fd, iov, 2, 20) == 6 && memcmp(a, "12", 2) == 0 &&
		  memcmp(b, "345\0", 4) == 0,
	      "pwritev/preadv");
	/* a duplicate shares the offset */
	int d = dup(fd);
	CHECK(d >= 0, "dup");
	CHECK(lseek(fd, 30, SEEK_SET) == 30 && write(d, "D", 1) == 1 && lseek(fd, 0, SEEK_CUR) == 31,
	      "dup shares the offset");
	CHECK(close(d) == 0, "close dup");
	CHECK(write(fd, "E", 1) == 1 && pread(fd, buf, 2, 30) == 2 && memcmp(buf, "DE", 2) == 0,
	      "write after the dup closed");
	CHECK(fsync(fd) == 0 && fdatasync(fd) == 0, "fsync");
	CHECK(ftruncate(fd, 4) == 0 && fstat(fd, &st) == 0 && st.st_size == 4, "ftruncate");
	CHECK(pread(fd, buf, 16, 0) == 4 && memcmp(buf, "abc\0", 4) == 0, "read after truncate");
	CHECK(close(fd) == 0, "close");
	CHECK(stat(at("sem"), &st) == 0 && st.st_size == 4, "stat after close: size %ld", (long)st.st_size);
}

static void access_modes(void)
{
	int fd = open(at("sem"), O_WRONLY);
	char c;
	CHECK(fd >= 0, "open O_WRONLY");
	CHECK(read(fd, &c, 1) == -1 && errno == EBADF, "read on O_WRONLY");
	close(fd);
	fd = open(at("sem"), O_RDONLY);
	CHECK(fd >= 0, "open O_RDONLY");
	CHECK(write(fd, "x", 1) == -1 && errno == EBADF, "write on O_RDONLY");
	close(fd);
	/* O_APPEND is left to the kernel, and appends */
	fd = open(at("sem"), O_WRONLY | O_APPEND);
	CHECK(fd >= 0 && write(fd, "Z", 1) == 1, "append");
	close(fd);
	fd = open(at("sem"), O_RDONLY);
	char buf[8];
	CHECK(read(fd, buf, 8) == 5 && buf[4] == 'Z', "appended byte");
	close(fd);
}

/* size and mtime: a reader through the kernel sees the writes after close */
static void size_after_close(void)
{
	struct stat before, after;
	int fd = open(at("grow"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open grow");
	CHECK(fstat(fd, &before) == 0, "fstat");
	usleep(20000);
	static char big[3 * MiB];
	memset(big, 7, sizeof(big));
	CHECK(write(fd, big, sizeof(big)) == (ssize_t)sizeof(big), "write 3 MiB");
	CHECK(close(fd) == 0, "close");
	CHECK(stat(at("grow"), &after) == 0 && after.st_size == 3 * MiB, "size after close %ld",
	      (long)after.st_size);
	CHECK(after.st_mtim.tv_sec > before.st_mtim.tv_sec ||
		  (after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec > before.st_mtim.tv_nsec),
	      "mtime moved on");
}

/* fork: the child writes through the kernel at the shared offset, the
 * parent goes on after it */
static void fork_shares_offset(void)
{
	int fd = open(at("fork"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open fork");
	CHECK(write(fd, "parent1-", 8) == 8, "parent write");
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		char buf[8];
		if (pread(fd, buf, 8, 0) != 8 || memcmp(buf, "parent1-", 8) != 0)
			_exit(2);
		if (write(fd, "child-", 6) != 6)
			_exit(3);
		/* and an exec'ed grandchild, through the inherited descriptor */
		char cmd[64];
		snprintf(cmd, sizeof(cmd), "printf exec- >&%d", fd);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(4);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d",
	      status);
	CHECK(write(fd, "parent2", 7) == 7, "parent write after the child");
	char buf[64] = {0};
	CHECK(pread(fd, buf, sizeof(buf), 0) == 26, "size after fork");
	CHECK(memcmp(buf, "parent1-child-exec-parent2", 26) == 0, "content after fork: %s", buf);
	close(fd);
}

/* threads on one descriptor: every write lands whole at its own offset */
static int tfd;
static void *writer(void *arg)
{
	char rec[64];
	memset(rec, 'a' + (int)(long)arg, sizeof(rec));
	for (int i = 0; i < 50; i++)
		if (write(tfd, rec, sizeof(rec)) != sizeof(rec))
			return (void *)1;
	return NULL;
}

static void threads(void)
{
	tfd = open(at("threads"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(tfd >= 0, "open threads");
	pthread_t t[4];
	for (long i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, writer, (void *)i);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		CHECK(r == NULL, "thread write");
	}
	static char all[4 * 50 * 64];
	CHECK(pread(tfd, all, sizeof(all), 0) == sizeof(all), "threads: size");
	for (size_t r = 0; r < sizeof(all); r += 64)
		for (int i = 1; i < 64; i++)
			CHECK(all[r + i] == all[r], "threads: record at %zu torn", r);
	close(tfd);
}

/* calls the library leaves to the kernel: copy_file_range is EXDEV, mmap
 * sees the direct writes (the descriptor falls back first) */
static void fallbacks(void)
{
	int fd = open(at("mmap"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open mmap");
	static char data[2 * MiB];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	CHECK(write(fd, data, sizeof(data)) == (ssize_t)sizeof(data), "write mmap");
	int out = open(at("mmap.copy"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(out >= 0, "open copy");
	loff_t a = 0, b = 0;
	CHECK(copy_file_range(fd, &a, out, &b, 4096, 0) == -1 && errno == EXDEV, "copy_file_range: want EXDEV");
	close(out);
	char *m = mmap(NULL, sizeof(data), PROT_READ, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mmap");
	CHECK(memcmp(m, data, sizeof(data)) == 0, "mmap sees the direct writes");
	munmap(m, sizeof(data));
	/* the descriptor goes on through the kernel, at the same offset */
	CHECK(lseek(fd, 0, SEEK_CUR) == (off_t)sizeof(data), "offset after the fallback");
	CHECK(write(fd, "tail", 4) == 4, "write after the fallback");
	char buf[4];
	CHECK(pread(fd, buf, 4, sizeof(data)) == 4 && memcmp(buf, "tail", 4) == 0, "read after the fallback");
	close(fd);
}

/* a descriptor closed behind libc's back: its number, handed out again
 * for another file, is that file's */
static void raw_close(void)
{
	int fd = open(at("stale"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, "abc", 3) == 3, "write stale");
	CHECK(syscall(SYS_close, fd) == 0, "raw close");
	int z = open("/dev/zero", O_RDONLY);
	CHECK(z == fd, "the number comes back (%d, %d)", z, fd);
	char buf[3] = {1, 1, 1};
	CHECK(read(z, buf, 3) == 3 && memcmp(buf, "\0\0\0", 3) == 0, "read /dev/zero");
	close(z);
	fd = open(at("stale"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, "abc", 3) == 3, "write stale");
	CHECK(syscall(SYS_close, fd) == 0, "raw close");
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	int d = dup(p[0]); /* a descriptor the library does not see made: dup's */
	CHECK(d == fd || p[0] == fd || p[1] == fd, "the number comes back");
	CHECK(write(p[1], "xy", 2) == 2, "write to the pipe");
	CHECK(read(d, buf, 2) == 2 && memcmp(buf, "xy", 2) == 0, "read from the pipe");
	close(d), close(p[0]), close(p[1]);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: semantics DIR\n");
		return 2;
	}
	dir = argv[1];
	offsets_holes_sizes();
	access_modes();
	size_after_close();
	fork_shares_offset();
	threads();
	fallbacks();
	raw_close();
	printf("ok\n");
	return 0;
}
