// Command ddb is the offline debugger for one VOS target directory, like DAOS's
// ddb. All logic lives in server/ddb; see 'ddb --help'.
package main

import (
	"os"

	"github.com/godaos/godaos/server/ddb"
)

func main() {
	os.Exit(ddb.Run(os.Args[1:], os.Stdout, os.Stderr))
}
