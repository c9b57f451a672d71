// Command libgodaos_il is the Go half of the interception library: built
// with -buildmode=c-shared (make il, or il.Build) into libgodaos_il.so,
// which libpil4dfs.so (daos/il/csrc/pil4dfs.c) loads the first time a
// process opens a file on a dfuse mount. It connects to the file's pool and
// container through daos_agent, as any client does, and reads and writes the
// file's byte array straight from and into the caller's buffers.
//
// Built as an ordinary program (go build ./cmd/...) it only says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "libgodaos_il is a library: build it with `make il` (go build -buildmode=c-shared) and preload bin/libpil4dfs.so, which loads it")
	os.Exit(2)
}
