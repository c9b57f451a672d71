package server

import (
	"strconv"
	"strings"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/server/mgmt"
)

// Container health (DAOS's status property, HEALTHY or UNCLEAN). A
// container promises to survive rd_fac fault domains failing; when more have
// failed since an administrator last accepted its state, its data may be
// lost, and it is UNCLEAN: opening it fails with DER_RF, and clients that
// hold it open get DER_RF from their I/O (they check the same rule against
// each new pool map), rather than reading what a lost shard no longer holds.
// 'daos cont set-prop <pool> <cont> status:healthy' accepts the failures
// so far (the map version is kept as health_ver) and the container opens
// again.

// contHealth says whether ct is UNCLEAN in p's current map, and why.
func contHealth(p mgmt.Pool, ct mgmt.Cont) (unclean bool, failed, rdFac int) {
	pm, err := p.PlacementMap()
	if err != nil {
		return false, 0, 0
	}
	rdFac, _ = strconv.Atoi(ct.Props["rd_fac"])
	since, _ := strconv.ParseUint(ct.Props["health_ver"], 10, 32)
	failed = pm.FailedDomains(uint32(since))
	return failed > rdFac, failed, rdFac
}

// withStatus is ct's properties with its status as it is now.
func withStatus(p mgmt.Pool, ct mgmt.Cont) mgmt.Cont {
	unclean, _, _ := contHealth(p, ct)
	props := map[string]string{}
	for k, v := range ct.Props {
		props[k] = v
	}
	props["status"] = "HEALTHY"
	if unclean {
		props["status"] = "UNCLEAN"
	}
	ct.Props = props
	return ct
}

// uncleanError is DER_RF for an UNCLEAN container.
func uncleanError(p mgmt.Pool, ct mgmt.Cont) error {
	unclean, failed, rdFac := contHealth(p, ct)
	if !unclean {
		return nil
	}
	return daoserr.Newf(daoserr.RF, "container %s/%s is UNCLEAN: %d fault domains have failed, more than its rd_fac %d: data may be lost", p.Label, ct.Label, failed, rdFac).
		WithResolution("bring the failed servers back and reintegrate them (dmg pool reintegrate), or accept the loss: daos cont set-prop %s %s status:healthy", p.Label, ct.Label)
}

// setHealthy turns a status:healthy property into the map version it
// accepts the failures up to (health_ver); other status values are refused.
func setHealthy(p mgmt.Pool, set map[string]string) error {
	v, ok := set["status"]
	if !ok {
		return nil
	}
	if !strings.EqualFold(v, "healthy") {
		return daoserr.Newf(daoserr.Inval, "container status %q: only status:healthy can be set", v).
			WithResolution("status:healthy accepts the failures so far; UNCLEAN is set by failures, not by hand")
	}
	delete(set, "status")
	set["health_ver"] = strconv.FormatUint(uint64(p.MapVersion), 10)
	return nil
}
