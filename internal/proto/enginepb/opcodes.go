package enginepb

import "strconv"

// Opcodes of the engine's data-plane RPCs (internal/rpc frames). Each request's
// message header is the message named beside it; replies without a message
// header are empty on success.
const (
	OpTargetCreate  uint16 = 1  // TargetCreateReq
	OpTargetDestroy uint16 = 2  // TargetDestroyReq
	OpTargetQuery   uint16 = 3  // TargetDestroyReq (the pool) -> TargetQueryRep
	OpPing          uint16 = 4  // no header: answers at once (health checks, benchmarks)
	OpContCreate    uint16 = 10 // ContCreateReq
	OpContDestroy   uint16 = 11 // ContDestroyReq
	OpObjUpdate     uint16 = 20 // ObjIOReq, bulk: the values in IOD order
	OpObjFetch      uint16 = 21 // ObjIOReq -> ObjFetchRep, bulk: the values in IOD order
	OpObjPunch      uint16 = 22 // ObjPunchReq -> ObjUpdateRep (the epoch)
	OpObjList       uint16 = 23 // ObjListReq -> ObjListRep
	OpObjQuery      uint16 = 24 // ObjQueryReq -> ObjQueryRep
	OpObjListRecx   uint16 = 25 // ObjListRecxReq -> ObjListRecxRep
	OpObjListObjs   uint16 = 26 // ObjListObjsReq -> ObjListObjsRep (the frame's target)
	OpCollective    uint16 = 30 // CollectiveReq -> CollectiveRep (sent to target 0)
	OpEpochSync     uint16 = 50 // EpochSyncReq -> ObjUpdateRep (the clock), over a collective
	OpContRollback  uint16 = 51 // ContEpochReq: discard what is newer than the epoch
	OpContAggregate uint16 = 52 // ContEpochReq: aggregate below the epoch, keeping snapshots
	OpTxPrepare     uint16 = 53 // TxPrepareReq -> TxPrepareRep, bulk: the writes' values
	OpTxCommit      uint16 = 54 // TxCommitReq
	OpEpochQuery    uint16 = 55 // no header -> ObjUpdateRep: the engine's clock (clients' transactions)
	OpTxStatus      uint16 = 56 // TxStatusReq -> TxStatusRep (engine to engine: a participant asks the coordinator)
	OpPoolMapUpdate uint16 = 57 // PoolMap: the management service leader's new map of a pool (over a collective)
	OpRebuildStart  uint16 = 62 // RebuildReq: start rebuilding a pool to a map version (over a collective)
	OpRebuildQuery  uint16 = 63 // RebuildReq -> RebuildRep: this rank's rebuild progress
	OpMigrate       uint16 = 64 // MigrateReq, bulk: the values (engine to engine: rebuild copies a dkey)
	// Engine to engine, EC rebuild: reads of another shard of a group, at an
	// epoch, without a container handle.
	OpECFetch    uint16 = 65 // ObjIOReq -> ObjFetchRep, bulk: the values in IOD order
	OpECList     uint16 = 66 // ObjListReq -> ObjListRep
	OpECListRecx uint16 = 67 // ObjListRecxReq -> ObjListRecxRep
	// POSIX byte-range locks (see docs/design/locks.md): sent to the target
	// holding the object's lock table.
	OpLock uint16 = 39 // LockReq -> LockRep (below 64: the RPC server counts it)
)

// The pool service, for clients (see server/poolsvc.go): the message header is
// the control plane's request, the reply header its reply.
const (
	OpSvcPoolConnect uint16 = 40 // ctlpb.PoolConnectReq -> ctlpb.PoolConnectResp
	OpSvcContCreate  uint16 = 41 // ctlpb.ContCreateReq -> ctlpb.ContResp
	OpSvcContOpen    uint16 = 42 // ctlpb.ContReq -> ctlpb.ContResp
	OpSvcContList    uint16 = 43 // ctlpb.ContReq -> ctlpb.ContResp (conts)
	OpSvcContDestroy uint16 = 44 // ctlpb.ContReq -> ctlpb.ContResp
	OpSvcContOIDs    uint16 = 45 // ctlpb.ContOIDsReq -> ctlpb.ContOIDsResp
	OpSvcPoolQuery   uint16 = 46 // ctlpb.PoolReq -> ctlpb.PoolResp (space per tier)
	OpSvcContACL     uint16 = 47 // ctlpb.ContACLReq -> ctlpb.PoolACLResp
	OpSvcContProp    uint16 = 48 // ctlpb.ContPropReq -> ctlpb.PoolPropResp
	OpSvcContAttr    uint16 = 49 // ctlpb.ContAttrReq -> ctlpb.ContAttrResp
	OpSvcContSnap    uint16 = 60 // ctlpb.ContSnapReq -> ctlpb.ContSnapResp
	OpSvcPoolMap     uint16 = 61 // ctlpb.PoolReq -> ctlpb.PoolMapResp (a client's pool map is stale)
)

// ServerOps are the opcodes only servers may send: their message header is
// a ServerSigned around the request's message. OpCollective is one: it makes
// the engine send to the peers it names.
var ServerOps = map[uint16]bool{OpTargetCreate: true, OpTargetDestroy: true, OpTargetQuery: true, OpContCreate: true,
	OpContDestroy: true, OpCollective: true, OpEpochSync: true, OpContRollback: true, OpContAggregate: true, OpTxStatus: true, OpPoolMapUpdate: true,
	OpRebuildStart: true, OpRebuildQuery: true, OpMigrate: true, OpECFetch: true, OpECList: true, OpECListRecx: true}

// Rights a Capability grants over its container.
const (
	CapRead  uint32 = 1 << 0 // fetch, list, query
	CapWrite uint32 = 1 << 1 // update, punch
)

var opNames = map[uint16]string{
	OpTargetCreate: "TargetCreate", OpTargetDestroy: "TargetDestroy", OpTargetQuery: "TargetQuery", OpPing: "Ping",
	OpContCreate: "ContCreate", OpContDestroy: "ContDestroy", OpObjUpdate: "ObjUpdate", OpObjFetch: "ObjFetch", OpObjPunch: "ObjPunch", OpObjList: "ObjList",
	OpObjQuery: "ObjQuery", OpObjListRecx: "ObjListRecx", OpObjListObjs: "ObjListObjs",
	OpCollective: "Collective", OpSvcPoolConnect: "SvcPoolConnect", OpSvcContCreate: "SvcContCreate",
	OpSvcContOpen: "SvcContOpen", OpSvcContList: "SvcContList", OpSvcContDestroy: "SvcContDestroy", OpSvcContOIDs: "SvcContOIDs",
	OpSvcPoolQuery: "SvcPoolQuery", OpSvcContACL: "SvcContACL", OpSvcContProp: "SvcContProp",
	OpSvcContAttr: "SvcContAttr", OpSvcContSnap: "SvcContSnap", OpSvcPoolMap: "SvcPoolMap",
	OpEpochSync: "EpochSync", OpContRollback: "ContRollback", OpContAggregate: "ContAggregate", OpTxPrepare: "TxPrepare", OpTxCommit: "TxCommit", OpEpochQuery: "EpochQuery", OpTxStatus: "TxStatus",
	OpPoolMapUpdate: "PoolMapUpdate", OpRebuildStart: "RebuildStart", OpRebuildQuery: "RebuildQuery", OpMigrate: "Migrate",
	OpECFetch: "ECFetch", OpECList: "ECList", OpECListRecx: "ECListRecx",
	OpLock: "Lock",
}

// OpName names an opcode for logs and metrics ("op<N>" for unknown ones).
func OpName(op uint16) string {
	if n, ok := opNames[op]; ok {
		return n
	}
	return "op" + strconv.Itoa(int(op))
}
