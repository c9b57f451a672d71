/*
 * mpiio: MPI-IO workload for posixload.MPIIO (run with mpirun -np N).
 *
 *   mpiio FILE SIZE_PER_RANK MODE [FILE2]      MODE: sieve | cb
 *
 * With FILE2 (the same file through another mount: a second client), odd
 * ranks use it.
 *
 * The file has three regions of N*SIZE bytes each:
 *   A  independent contiguous writes (MPI_File_write_at, uneven pieces, in
 *      reverse order): rank r owns [r*SIZE, (r+1)*SIZE);
 *   B  collective writes through a strided vector view (MPI_Type_vector):
 *      rank r owns every N-th block of VEC_BLOCK bytes, starting with block r;
 *   C  collective writes through a subarray view (MPI_Type_create_subarray) of
 *      a 2-D byte array ROWS x (N*SUB_COLS): rank r owns the column band
 *      [r*SUB_COLS, (r+1)*SUB_COLS) of every row.
 * Every byte holds pattern(owner rank, file offset); the Go side
 * (posixload.mpiioOwner and pattern) computes the same layout and checks the
 * file again with plain reads.
 *
 * After the writes (and MPI_File_sync, barrier, sync: MPI-IO's recipe for
 * other processes to see them), each rank reads back the parts of another
 * rank ((r+1)%N): region A with MPI_File_read_at, regions B and C through the
 * same views with MPI_File_read_at_all; then rank 0 reads the whole file
 * independently. Any mismatch prints the first bad byte and aborts with exit
 * status 3.
 *
 * MODE sieve sets romio_ds_write/romio_ds_read=enable and
 * romio_cb_write/romio_cb_read=disable, so ROMIO writes the strided views with
 * data sieving: read-modify-write of extents that overlap other ranks' data,
 * under fcntl F_SETLKW locks. MODE cb enables collective buffering with every
 * rank an aggregator.
 *
 * Output: lines "phase NAME BYTES SECONDS" (slowest rank) for the Go side.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VEC_BLOCK 1024
#define SUB_COLS 256

static int rank, nprocs;
static long long size; /* bytes per rank per region */

static unsigned char pattern(int owner, long long off)
{
	uint32_t v = (uint32_t)off * 2654435761u + (uint32_t)(owner + 1) * 0x9E3779B9u;
	v ^= v >> 15;
	v ^= v >> 8;
	return (unsigned char)v;
}

/* owner of file offset off, or -1 past the end */
static int owner(long long off)
{
	long long region = (long long)nprocs * size;
	if (off < region)
		return (int)(off / size);
	off -= region;
	if (off < region)
		return (int)((off / VEC_BLOCK) % nprocs);
	off -= region;
	if (off < region)
		return (int)((off % ((long long)nprocs * SUB_COLS)) / SUB_COLS);
	return -1;
}

static void die(const char *what, int err)
{
	char msg[MPI_MAX_ERROR_STRING];
	int len = 0;
	MPI_Error_string(err, msg, &len);
	fprintf(stderr, "mpiio: rank %d: %s: %s\n", rank, what, msg);
	fflush(stderr);
	MPI_Abort(MPI_COMM_WORLD, 2);
}

#define CHECK(call)                                                                                \
	do {                                                                                       \
		int e_ = (call);                                                                   \
		if (e_ != MPI_SUCCESS)                                                             \
			die(#call, e_);                                                            \
	} while (0)

/* fill buf with what owner o wrote at the file offsets its view maps buf to */
typedef long long (*mapfn)(int o, long long i);

static long long mapA(int o, long long i) { return (long long)o * size + i; }

static long long mapB(int o, long long i)
{
	long long blk = i / VEC_BLOCK;
	return (long long)nprocs * size + (blk * nprocs + o) * VEC_BLOCK + i % VEC_BLOCK;
}

static long long mapC(int o, long long i)
{
	long long row = i / SUB_COLS;
	return 2LL * nprocs * size + row * nprocs * SUB_COLS + (long long)o * SUB_COLS + i % SUB_COLS;
}

static void fill(unsigned char *buf, int o, mapfn m)
{
	for (long long i = 0; i < size; i++)
		buf[i] = pattern(o, m(o, i));
}

static void verify(const char *what, const unsigned char *buf, int o, mapfn m)
{
	for (long long i = 0; i < size; i++) {
		long long off = m(o, i);
		unsigned char want = pattern(o, off);
		if (buf[i] != want) {
			fprintf(stderr,
				"mpiio: rank %d: %s: MISMATCH at file offset %lld (byte %lld of rank %d's "
				"part): got 0x%02x, want 0x%02x\n",
				rank, what, off, i, o, buf[i], want);
			fflush(stderr);
			MPI_Abort(MPI_COMM_WORLD, 3);
		}
	}
}

static double phase_start;

static void begin(void)
{
	MPI_Barrier(MPI_COMM_WORLD);
	phase_start = MPI_Wtime();
}

static void end(const char *name, long long bytes)
{
	double dt = MPI_Wtime() - phase_start, max = 0;
	MPI_Reduce(&dt, &max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
	if (rank == 0)
		printf("phase %s %lld %.6f\n", name, bytes, max);
}

int main(int argc, char **argv)
{
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
	if (argc != 4 && argc != 5) {
		if (rank == 0)
			fprintf(stderr, "usage: mpiio FILE SIZE_PER_RANK sieve|cb [FILE2]\n");
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	const char *path = argc == 5 && rank % 2 ? argv[4] : argv[1];
	size = atoll(argv[2]);
	const char *mode = argv[3];
	if (size <= 0 || size % VEC_BLOCK || size % SUB_COLS) {
		if (rank == 0)
			fprintf(stderr, "mpiio: SIZE_PER_RANK %s must be a positive multiple of %d\n",
				argv[2], VEC_BLOCK);
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	/* errors on files come back as return codes, which CHECK reports */
	MPI_File_set_errhandler(MPI_FILE_NULL, MPI_ERRORS_RETURN);

	MPI_Info info;
	MPI_Info_create(&info);
	if (strcmp(mode, "sieve") == 0) {
		MPI_Info_set(info, "romio_ds_write", "enable");
		MPI_Info_set(info, "romio_ds_read", "enable");
		MPI_Info_set(info, "romio_cb_write", "disable");
		MPI_Info_set(info, "romio_cb_read", "disable");
	} else if (strcmp(mode, "cb") == 0) {
		MPI_Info_set(info, "romio_cb_write", "enable");
		MPI_Info_set(info, "romio_cb_read", "enable");
		MPI_Info_set(info, "cb_config_list", "*:*");
	} else {
		if (rank == 0)
			fprintf(stderr, "mpiio: unknown mode %s (sieve or cb)\n", mode);
		MPI_Abort(MPI_COMM_WORLD, 1);
	}

	long long region = (long long)nprocs * size;
	unsigned char *buf = malloc(size), *rbuf = malloc(size);
	if (!buf || !rbuf) {
		fprintf(stderr, "mpiio: rank %d: out of memory for %lld bytes\n", rank, size);
		MPI_Abort(MPI_COMM_WORLD, 2);
	}

	MPI_Datatype vec, sub;
	CHECK(MPI_Type_vector((int)(size / VEC_BLOCK), VEC_BLOCK, VEC_BLOCK * nprocs, MPI_BYTE, &vec));
	CHECK(MPI_Type_commit(&vec));
	int gsizes[2] = {(int)(size / SUB_COLS), nprocs * SUB_COLS};
	int subsizes[2] = {(int)(size / SUB_COLS), SUB_COLS};
	int starts[2] = {0, 0};
	/* one subarray type per rank (its column band); built on demand */
	MPI_Datatype subs[nprocs];
	for (int o = 0; o < nprocs; o++) {
		starts[1] = o * SUB_COLS;
		CHECK(MPI_Type_create_subarray(2, gsizes, subsizes, starts, MPI_ORDER_C, MPI_BYTE, &subs[o]));
		CHECK(MPI_Type_commit(&subs[o]));
	}
	sub = subs[rank];

	MPI_File fh;
	CHECK(MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_CREATE | MPI_MODE_RDWR, info, &fh));
	MPI_File_set_errhandler(fh, MPI_ERRORS_RETURN);
	MPI_Status st;

	/* A: independent contiguous writes, uneven pieces, last piece first */
	fill(buf, rank, mapA);
	begin();
	{
		static const long long pieces[] = {1, 511, 4096, 70001, 3, 65536, 12345};
		long long offs[4096], lens[4096];
		int n = 0;
		for (long long done = 0; done < size; n++) {
			long long len = n == 4095 ? size - done : pieces[n % 7];
			if (len > size - done)
				len = size - done;
			offs[n] = done;
			lens[n] = len;
			done += len;
		}
		for (int k = n - 1; k >= 0; k--)
			CHECK(MPI_File_write_at(fh, mapA(rank, offs[k]), buf + offs[k], (int)lens[k], MPI_BYTE, &st));
	}
	end("write_independent", region);

	/* B: collective writes through a strided vector view */
	fill(buf, rank, mapB);
	CHECK(MPI_File_set_view(fh, region + (long long)rank * VEC_BLOCK, MPI_BYTE, vec, "native", info));
	begin();
	CHECK(MPI_File_write_at_all(fh, 0, buf, (int)size, MPI_BYTE, &st));
	end("write_collective_vector", region);

	/* C: collective writes through a subarray view */
	fill(buf, rank, mapC);
	CHECK(MPI_File_set_view(fh, 2 * region, MPI_BYTE, sub, "native", info));
	begin();
	CHECK(MPI_File_write_at_all(fh, 0, buf, (int)size, MPI_BYTE, &st));
	end("write_collective_subarray", region);

	CHECK(MPI_File_sync(fh));
	MPI_Barrier(MPI_COMM_WORLD);
	CHECK(MPI_File_sync(fh));

	int other = (rank + 1) % nprocs;

	/* A: independent read of the next rank's part */
	CHECK(MPI_File_set_view(fh, 0, MPI_BYTE, MPI_BYTE, "native", info));
	memset(rbuf, 0, size);
	begin();
	CHECK(MPI_File_read_at(fh, mapA(other, 0), rbuf, (int)size, MPI_BYTE, &st));
	end("read_independent", region);
	verify("independent read (region A)", rbuf, other, mapA);

	/* B: collective read of the next rank's blocks */
	CHECK(MPI_File_set_view(fh, region + (long long)other * VEC_BLOCK, MPI_BYTE, vec, "native", info));
	memset(rbuf, 0, size);
	begin();
	CHECK(MPI_File_read_at_all(fh, 0, rbuf, (int)size, MPI_BYTE, &st));
	end("read_collective_vector", region);
	verify("collective read, vector view (region B)", rbuf, other, mapB);

	/* C: collective read of the next rank's column band */
	CHECK(MPI_File_set_view(fh, 2 * region, MPI_BYTE, subs[other], "native", info));
	memset(rbuf, 0, size);
	begin();
	CHECK(MPI_File_read_at_all(fh, 0, rbuf, (int)size, MPI_BYTE, &st));
	end("read_collective_subarray", region);
	verify("collective read, subarray view (region C)", rbuf, other, mapC);

	/* the whole file, byte by byte, and its size */
	CHECK(MPI_File_set_view(fh, 0, MPI_BYTE, MPI_BYTE, "native", info));
	MPI_Offset fsize;
	CHECK(MPI_File_get_size(fh, &fsize));
	if (fsize != 3 * region) {
		fprintf(stderr, "mpiio: rank %d: file size %lld, want %lld\n", rank, (long long)fsize, 3 * region);
		MPI_Abort(MPI_COMM_WORLD, 3);
	}
	if (rank == 0) {
		for (long long off = 0; off < 3 * region; off += size) {
			CHECK(MPI_File_read_at(fh, off, rbuf, (int)size, MPI_BYTE, &st));
			for (long long i = 0; i < size; i++) {
				int o = owner(off + i);
				if (rbuf[i] != pattern(o, off + i)) {
					fprintf(stderr,
						"mpiio: rank 0: whole-file read: MISMATCH at file offset %lld "
						"(written by rank %d): got 0x%02x, want 0x%02x\n",
						off + i, o, rbuf[i], pattern(o, off + i));
					fflush(stderr);
					MPI_Abort(MPI_COMM_WORLD, 3);
				}
			}
		}
	}

	CHECK(MPI_File_close(&fh));
	MPI_Type_free(&vec);
	for (int o = 0; o < nprocs; o++)
		MPI_Type_free(&subs[o]);
	MPI_Info_free(&info);
	free(buf);
	free(rbuf);
	if (rank == 0)
		printf("ok %s %lld bytes verified\n", mode, 3 * region);
	MPI_Finalize();
	return 0;
}
