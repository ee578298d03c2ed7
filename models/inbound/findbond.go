package inbound

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"unifi/models/inbound/inboundsql"
)

// FindBond is the bond of the remote ticket reference on the integration, as
// inbound message scripts see it through findBond(reference)
// (docs/scripting.md): internal_reference, external_reference and state, or
// nil when the remote ticket is not bonded here. It reads on the service's
// connection, so inside InTx it sees what the caller's transaction wrote
// (a poll page's earlier items; through Page.Lookups, those it holds back
// too). An empty reference is never bonded.
func (s *Service) FindBond(ctx context.Context, integrationID int64, reference string) (map[string]any, error) {
	if reference == "" {
		return nil, nil
	}
	if s.noteLookup != nil {
		s.noteLookup(reference)
	}
	if s.page != nil && s.page.heldRefs[reference] {
		if err := s.page.Flush(ctx); err != nil {
			return nil, err
		}
	}
	var internal, external, state string
	err := s.pool().QueryRowContext(ctx, inboundsql.FindBond, integrationID, reference).Scan(&internal, &external, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find bond of %s: %w", reference, err)
	}
	return map[string]any{"internal_reference": internal, "external_reference": external, "state": state}, nil
}

// NotingLookups is s, its FindBond calling note with each reference it is
// asked for first: the poller translates a page's items ahead, in parallel,
// and keeps a translation whose lookups no earlier item of the page may have
// changed (worker/poll, deliverPage).
func (s *Service) NotingLookups(note func(reference string)) *Service {
	c := *s
	c.noteLookup = note
	return &c
}
