package worker

// Stopping reports whether Stop has begun (tests wait for it to order events).
func (p *Pool) Stopping() bool { return p.isStopping() }
