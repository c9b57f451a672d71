package server

import "context"

// rankDead is called on the management service leader when a rank is
// confirmed dead (SWIM): the rank's targets are excluded from every pool
// map that has them, as the pools' self_heal property allows.
func (s *Server) rankDead(ctx context.Context, rank uint32, reason string) {
	s.log.Warn("rank is dead: excluding its targets from its pools", "rank", rank, "reason", reason)
	if err := s.ctl.excludeRank(ctx, rank, reason, false); err != nil {
		s.log.Error("excluding a dead rank's targets", "rank", rank, "err", err)
	}
}
