package fault

import (
	"net"
	"sync"
	"testing"
)

// ProxyMode is what a Proxy does with the traffic it carries.
type ProxyMode int

const (
	// ProxyPass forwards both ways.
	ProxyPass ProxyMode = iota
	// ProxyHold forwards requests to the target but holds its answers: the
	// connection stays open, the client waits for an answer that does not
	// come (the target has acted on the request). Held bytes go on when the
	// proxy passes again; dropped connections lose them.
	ProxyHold
	// ProxyDrop closes every open connection and each new one at once.
	ProxyDrop
)

// Proxy is a TCP proxy on loopback in front of one target address: the
// network between two instances, which a test can stall and cut.
type Proxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	changed  *sync.Cond // signalled when mode changes
	mode     ProxyMode
	conns    map[net.Conn]struct{}
	accepted int
	dropped  int
	held     int
	wg       sync.WaitGroup
}

// NewProxy listens on a free loopback port and forwards to target; it is
// closed at cleanup.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fault: proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.changed = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// Addr is the address clients dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetMode switches the proxy; ProxyDrop closes every open connection.
func (p *Proxy) SetMode(m ProxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	if m == ProxyDrop {
		for c := range p.conns {
			_ = c.Close()
			p.dropped++
		}
	}
	p.changed.Broadcast()
}

// Stats returns the connections accepted, those closed by ProxyDrop and the
// answers (reads from the target) that had to wait in ProxyHold.
func (p *Proxy) Stats() (accepted, dropped, held int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted, p.dropped, p.held
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.accepted++
		if p.mode == ProxyDrop {
			p.dropped++
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.carry(c)
	}
}

// carry forwards one client connection to the target.
func (p *Proxy) carry(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	if p.mode == ProxyDrop || p.conns == nil {
		p.mu.Unlock()
		_ = client.Close()
		_ = server.Close()
		return
	}
	p.conns[client], p.conns[server] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.copy(server, client, false); done <- struct{}{} }()
	go func() { p.copy(client, server, true); done <- struct{}{} }()
	<-done
	_ = client.Close()
	_ = server.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// copy moves bytes from src to dst; answers (from the target) wait while the
// proxy holds.
func (p *Proxy) copy(dst, src net.Conn, answers bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if answers && p.mode == ProxyHold {
				p.held++
			}
			for answers && p.mode == ProxyHold {
				p.changed.Wait()
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF or closed: the other side is closed by carry
			return
		}
	}
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mode = ProxyPass
	p.changed.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}
