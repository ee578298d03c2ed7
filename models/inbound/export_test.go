package inbound

import (
	"context"
	"fmt"
	"time"

	"unifi/models/inbound/inboundsql"
)

// ReceiveInboundTogether receives reqs as one group, in order, as if they
// had arrived together (every one must be an update the configuration
// snapshot accepts); a message the group leaves undecided takes the
// one-message path afterwards, as in ReceiveInbound (byGroup tells which
// messages the group decided). Tests use it to make a group deterministic.
func (s *Service) ReceiveInboundTogether(ctx context.Context, reqs []Request) (res []*Result, errs []error,
	byGroup []bool) {
	items := make([]*inboundItem, len(reqs))
	for i, req := range reqs {
		it, ok := s.groupItem(ctx, req)
		if !ok {
			panic(fmt.Sprintf("ReceiveInboundTogether: request %d cannot be grouped", i))
		}
		items[i] = it
	}
	s.enqueueInbound(items...)
	for _, it := range items {
		<-it.done
	}
	res, errs, byGroup = make([]*Result, len(reqs)), make([]error, len(reqs)), make([]bool, len(reqs))
	for i, it := range items {
		byGroup[i] = !it.fallback
		if it.fallback {
			res[i], errs[i] = s.receiveOne(ctx, reqs[i])
			continue
		}
		res[i], errs[i] = it.res, it.err
	}
	return res, errs, byGroup
}

// SetInboundBeforeWrite makes every group call f after it decided and before
// it writes (nil: nothing).
func (s *Service) SetInboundBeforeWrite(f func()) { s.inbound.beforeWriteFunc = f }

// SetInboundLockTimeout sets how long a group waits for a row lock.
func (s *Service) SetInboundLockTimeout(d time.Duration) { s.inbound.lockTimeout = d }

// LookupsByRemoteReference are the statements that find a bond by the
// remote's reference ($1 the integration, $2 the reference), by name.
var LookupsByRemoteReference = map[string]string{"inboundsql.FindBond": inboundsql.FindBond, "inboundsql.BondedRemote": inboundsql.BondedRemote,
	"inboundsql.LockByTheirNumber": inboundsql.LockByTheirNumber}
