package engine

import (
	"github.com/godaos/godaos/internal/rpc"
)

// checkCap checks that m's capability grants need on m's container.
func (e *Engine) checkCap(req *rpc.Request, m capMsg, need uint32) error {
	return nil // TODO(lead): being written
}
