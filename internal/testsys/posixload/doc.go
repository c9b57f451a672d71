// Package posixload holds the POSIX and middleware workloads that issue 6's
// tests run against a dfuse mount, proven first on a local directory
// (posixload_test.go): the same calls take a mount point instead of
// t.TempDir().
//
//	posixload.MPIIO(t, mnt, posixload.MPIIOOptions{Mode: posixload.DataSieving, SecondDir: mnt2})
//	posixload.HDF5(t, mnt)
//	res := posixload.Fio(t, mnt) // res.Groups[i].WriteMiBps for docs/performance.md
//	posixload.Semantics(t, mnt, posixload.SemanticsOptions{NoHardLinks: true})
//	posixload.Locks(t, mnt, mnt2) // two mounts of one container
//
// The workloads are real programs: MPI-IO and HDF5 are C programs (csrc/,
// embedded) compiled once per test process with MPICH's mpicc and Debian's
// h5pcc.mpich and run with MPICH's mpirun (hydra, -launcher fork) under a
// bound that kills the whole process group; fio is Debian's. Semantics and
// Locks are Go; Locks' second locker is the test binary re-executed (this
// package's init serves lock commands when GODAOS_POSIXLOAD_LOCKER=1), so
// any test binary that imports the package can call it.
//
// A missing tool skips the test with the Debian package to install
// (scripts/deps.sh installs them all); with CI set in the environment it
// fails instead. Call Cleanup from TestMain to remove the compiled programs.
package posixload
