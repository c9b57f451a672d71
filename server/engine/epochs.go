package engine

import (
	"context"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/server/vos"
)

// Epoch operations the pool service runs on every target over collectives:
// reading the system's clock for a snapshot, rolling a container back to
// one, and aggregating below the oldest epoch anyone may still read.

// epochSync moves the engine's clock past the request's minimum and answers
// with its time.
func (e *Engine) epochSync(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.EpochSyncReq
	if err := decode(req, &m); err != nil {
		return rpc.Response{}, err
	}
	e.clock.Update(m.Min)
	hdr, _ := proto.Marshal(&enginepb.ObjUpdateRep{Epoch: e.clock.Now()})
	return rpc.Response{Header: hdr}, nil
}

// epochQuery answers with the engine's clock: a client's transaction reads
// at it.
func (e *Engine) epochQuery(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	hdr, _ := proto.Marshal(&enginepb.ObjUpdateRep{Epoch: e.clock.Now()})
	return rpc.Response{Header: hdr}, nil
}

// contRollback discards what the container holds newer than the epoch.
func (e *Engine) contRollback(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.ContEpochReq
	p, c, release, err := e.contReq(req, &m, 0)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	if m.Epoch == 0 || m.Epoch == vos.EpochMax {
		return rpc.Response{}, daoserr.Newf(daoserr.Inval, "roll container %s back to epoch %d", c, m.Epoch)
	}
	return rpc.Response{}, p.Discard(c, vos.Epoch(m.Epoch)+1, vos.EpochMax)
}

// contAggregate merges the container's history below the epoch, keeping
// what every snapshot reads; with ec_fold, it folds the EC replicas below
// the epoch into parity instead (aggregate_ec.go), and says DER_INPROGRESS
// unless every stripe that needed it folded.
func (e *Engine) contAggregate(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.ContEpochReq
	p, c, release, err := e.contReq(req, &m, 0)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	if m.EcFold {
		if m.Epoch == 0 || m.Epoch == vos.EpochMax {
			return rpc.Response{}, daoserr.Newf(daoserr.Inval, "EC aggregation of container %s at epoch %#x", c, m.Epoch)
		}
		complete, err := e.foldEC(ctx, vos.UUID(m.Pool), c, int(req.Target), m.Epoch)
		if err == nil && !complete {
			err = daoserr.Newf(daoserr.InProgress, "EC aggregation of container %s on target %d: some stripes are not folded below epoch %#x yet", c, req.Target, m.Epoch).
				WithResolution("the next aggregation round tries again; history is merged only below what is folded")
		}
		return rpc.Response{}, err
	}
	err = p.Aggregate(c, 0, vos.Epoch(m.Epoch), m.Snapshots)
	if daoserr.Is(err, daoserr.Nonexist) {
		err = nil // never written on this target
	}
	return rpc.Response{}, err
}
