// Command daos is the user tool for GoDAOS pools and containers, through the
// node's daos_agent:
//
//	daos pool query tank
//	daos cont create tank ckpt --type POSIX
//	daos cont list tank
//	daos -j cont query tank ckpt
package main

import (
	"os"

	"github.com/godaos/godaos/daos/daoscmd"
)

func main() { os.Exit(daoscmd.Run(os.Args[1:], os.Stdout, os.Stderr)) }
