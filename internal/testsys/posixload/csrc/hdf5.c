/*
 * hdf5: parallel HDF5 workload for posixload.HDF5 (run with mpirun -np N).
 *
 *   hdf5 ROWS_PER_RANK COLS FILE [FILE...]
 *
 * Writes each FILE the same way (the last one, when there are three or more,
 * with one value changed, so that the Go side can show h5diff notices), with
 * the MPI-IO driver (H5Pset_fapl_mpio) and collective transfers
 * (H5Pset_dxpl_mpio H5FD_MPIO_COLLECTIVE):
 *   /grid               group, attribute "nprocs" (int)
 *   /grid/index         int32   (N*ROWS_PER_RANK) x COLS, value i*COLS+j
 *   /grid/temperature   float64 same shape,        value i*1000+j+0.25
 *   /grid/pressure      float32 same shape,        value (i+j)*0.5
 * All three are chunked CHUNK_ROWS x CHUNK_COLS: chunks straddle the ranks'
 * parts and the edges. index and temperature are split in row bands (rank r
 * owns rows [r*ROWS_PER_RANK, (r+1)*ROWS_PER_RANK)), pressure in column bands
 * (COLS split as evenly as possible). After closing, the file is reopened and
 * each rank reads the next rank's part of every dataset collectively and
 * checks it; a mismatch exits with status 3.
 */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_ROWS 24
#define CHUNK_COLS 40

static int rank, nprocs;
static hsize_t rows_per, cols, nrows;

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if ((x) < 0) {                                                                     \
			fprintf(stderr, "hdf5: rank %d: %s failed (line %d)\n", rank, #x, __LINE__); \
			fflush(stderr);                                                            \
			MPI_Abort(MPI_COMM_WORLD, 2);                                              \
		}                                                                                  \
	} while (0)

/* the part of the global array rank o owns for dataset d */
static void part(int d, int o, hsize_t start[2], hsize_t count[2])
{
	if (d < 2) { /* row bands */
		start[0] = (hsize_t)o * rows_per;
		start[1] = 0;
		count[0] = rows_per;
		count[1] = cols;
		return;
	}
	hsize_t base = cols / nprocs, extra = cols % nprocs; /* column bands */
	start[0] = 0;
	start[1] = o * base + ((hsize_t)o < extra ? (hsize_t)o : extra);
	count[0] = nrows;
	count[1] = base + ((hsize_t)o < extra ? 1 : 0);
}

static const char *names[3] = {"/grid/index", "/grid/temperature", "/grid/pressure"};

static double value(int d, hsize_t i, hsize_t j)
{
	switch (d) {
	case 0:
		return (double)(i * cols + j);
	case 1:
		return i * 1000.0 + j + 0.25;
	default:
		return (i + j) * 0.5;
	}
}

static hid_t memtype(int d)
{
	return d == 0 ? H5T_NATIVE_INT : d == 1 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT;
}

static hid_t filetype(int d)
{
	return d == 0 ? H5T_STD_I32LE : d == 1 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
}

static void fillbuf(int d, void *buf, const hsize_t start[2], const hsize_t count[2], int perturb)
{
	for (hsize_t a = 0; a < count[0]; a++)
		for (hsize_t b = 0; b < count[1]; b++) {
			hsize_t i = start[0] + a, j = start[1] + b, k = a * count[1] + b;
			double v = value(d, i, j);
			if (perturb && d == 0 && i == nrows - 1 && j == cols - 1)
				v += 1;
			if (d == 0)
				((int *)buf)[k] = (int)v;
			else if (d == 1)
				((double *)buf)[k] = v;
			else
				((float *)buf)[k] = (float)v;
		}
}

static void write_file(const char *path, int perturb)
{
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
	CHECK(fapl);
	CHECK(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));
	hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
	CHECK(f);
	hid_t g = H5Gcreate2(f, "/grid", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	CHECK(g);
	hid_t as = H5Screate(H5S_SCALAR);
	hid_t attr = H5Acreate2(g, "nprocs", H5T_STD_I32LE, as, H5P_DEFAULT, H5P_DEFAULT);
	CHECK(attr);
	CHECK(H5Awrite(attr, H5T_NATIVE_INT, &nprocs));
	H5Aclose(attr);
	H5Sclose(as);

	hsize_t dims[2] = {nrows, cols};
	hsize_t chunk[2] = {CHUNK_ROWS < nrows ? CHUNK_ROWS : nrows, CHUNK_COLS < cols ? CHUNK_COLS : cols};
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
	CHECK(H5Pset_chunk(dcpl, 2, chunk));
	hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
	CHECK(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));
	hid_t fs = H5Screate_simple(2, dims, NULL);
	void *buf = malloc(nrows * cols * sizeof(double));
	for (int d = 0; d < 3; d++) {
		hid_t ds = H5Dcreate2(f, names[d], filetype(d), fs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
		CHECK(ds);
		hsize_t start[2], count[2];
		part(d, rank, start, count);
		CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL));
		hid_t ms = H5Screate_simple(2, count, NULL);
		fillbuf(d, buf, start, count, perturb);
		CHECK(H5Dwrite(ds, memtype(d), ms, fs, dxpl, buf));
		H5Sclose(ms);
		H5Dclose(ds);
	}
	free(buf);
	H5Sclose(fs);
	H5Pclose(dxpl);
	H5Pclose(dcpl);
	H5Gclose(g);
	CHECK(H5Fclose(f));
	H5Pclose(fapl);
}

static void check_file(const char *path, int perturb)
{
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
	CHECK(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
	CHECK(f);
	hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
	CHECK(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));
	int other = (rank + 1) % nprocs;
	double *got = malloc(nrows * cols * sizeof(double)), *want = malloc(nrows * cols * sizeof(double));
	for (int d = 0; d < 3; d++) {
		hid_t ds = H5Dopen2(f, names[d], H5P_DEFAULT);
		CHECK(ds);
		hid_t fs = H5Dget_space(ds);
		hsize_t start[2], count[2];
		part(d, other, start, count);
		CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL));
		hid_t ms = H5Screate_simple(2, count, NULL);
		memset(got, 0xff, nrows * cols * sizeof(double));
		CHECK(H5Dread(ds, memtype(d), ms, fs, dxpl, got));
		fillbuf(d, want, start, count, perturb);
		size_t n = count[0] * count[1] * (d == 0 ? sizeof(int) : d == 1 ? sizeof(double) : sizeof(float));
		if (memcmp(got, want, n) != 0) {
			fprintf(stderr, "hdf5: rank %d: %s: %s: rank %d's part reads back wrong\n", rank, path,
				names[d], other);
			fflush(stderr);
			MPI_Abort(MPI_COMM_WORLD, 3);
		}
		H5Sclose(ms);
		H5Sclose(fs);
		H5Dclose(ds);
	}
	free(got);
	free(want);
	H5Pclose(dxpl);
	CHECK(H5Fclose(f));
	H5Pclose(fapl);
}

int main(int argc, char **argv)
{
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
	if (argc < 4) {
		if (rank == 0)
			fprintf(stderr, "usage: hdf5 ROWS_PER_RANK COLS FILE [FILE...]\n");
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	rows_per = strtoull(argv[1], NULL, 10);
	cols = strtoull(argv[2], NULL, 10);
	nrows = rows_per * nprocs;
	if (rows_per == 0 || cols < (hsize_t)nprocs) {
		if (rank == 0)
			fprintf(stderr, "hdf5: ROWS_PER_RANK must be > 0 and COLS >= %d\n", nprocs);
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	int nfiles = argc - 3;
	for (int k = 0; k < nfiles; k++) {
		int perturb = nfiles >= 3 && k == nfiles - 1;
		double t0 = MPI_Wtime();
		write_file(argv[3 + k], perturb);
		double dt = MPI_Wtime() - t0;
		check_file(argv[3 + k], perturb);
		if (rank == 0)
			printf("wrote %s in %.6f s%s\n", argv[3 + k], dt, perturb ? " (perturbed)" : "");
	}
	MPI_Finalize();
	return 0;
}
