package app

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// limitListener accepts at most n connections at once. It bounds the memory connections hold,
// which nothing else does, without letting anyone hold every slot: while all n are taken, a new
// connection takes the slot of one idle between requests (a keep-alive connection, the longest
// idle first) or of one that has sent no request for newConnGrace; only while every connection is
// busy with a request does Accept wait, and the kernel queue further connections (up to its
// backlog, then refuse them). The http.Server must report its connections' states to ConnState.
func limitListener(l net.Listener, n int) *limitedListener {
	return &limitedListener{Listener: l, slots: make(chan struct{}, n), done: make(chan struct{}),
		conns: map[*limitedConn]struct{}{}}
}

// newConnGrace is how long a connection may take to send its first request and keep its slot
// while others wait for one: ReadHeaderTimeout is far longer, for slow networks when the server
// has room.
const newConnGrace = time.Second

// reclaimPoll is how often Accept, waiting for a slot, looks again for one to reclaim.
const reclaimPoll = 100 * time.Millisecond

type limitedListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	conns map[*limitedConn]struct{}
}

func (l *limitedListener) Accept() (net.Conn, error) {
	if err := l.takeSlot(); err != nil {
		return nil, err
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	lc := &limitedConn{Conn: c, state: http.StateNew, since: time.Now()}
	lc.release = func() {
		l.mu.Lock()
		delete(l.conns, lc)
		l.mu.Unlock()
		<-l.slots
	}
	l.mu.Lock()
	l.conns[lc] = struct{}{}
	l.mu.Unlock()
	return lc, nil
}

// takeSlot takes a free slot, reclaiming one while all are taken, or waits for one.
func (l *limitedListener) takeSlot() error {
	for {
		select {
		case l.slots <- struct{}{}:
			return nil
		case <-l.done:
			return net.ErrClosed
		default:
		}
		if l.reclaim() {
			continue
		}
		select {
		case l.slots <- struct{}{}:
			return nil
		case <-l.done:
			return net.ErrClosed
		case <-time.After(reclaimPoll):
		}
	}
}

// reclaim closes the connection that has been idle longest, or failing one, the oldest that has
// sent no request for newConnGrace, and reports whether it closed one.
func (l *limitedListener) reclaim() bool {
	now := time.Now()
	var idle, silent *limitedConn
	var idleSince, silentSince time.Time
	l.mu.Lock()
	for c := range l.conns {
		state, since := c.current()
		switch {
		case state == http.StateIdle && (idle == nil || since.Before(idleSince)):
			idle, idleSince = c, since
		case state == http.StateNew && now.Sub(since) >= newConnGrace && (silent == nil || since.Before(silentSince)):
			silent, silentSince = c, since
		}
	}
	l.mu.Unlock()
	victim := idle
	if victim == nil {
		victim = silent
	}
	if victim == nil {
		return false
	}
	victim.Close()
	return true
}

// ConnState is the http.Server's ConnState hook: it keeps each connection's state, for reclaim.
func (l *limitedListener) ConnState(c net.Conn, state http.ConnState) {
	if lc, ok := c.(*limitedConn); ok {
		lc.mu.Lock()
		lc.state, lc.since = state, time.Now()
		lc.mu.Unlock()
	}
}

// Close also ends an Accept waiting for a slot.
func (l *limitedListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedConn gives its slot back when it closes, once, and knows its state and since when.
type limitedConn struct {
	net.Conn
	releaseOnce sync.Once
	release     func()

	mu    sync.Mutex
	state http.ConnState
	since time.Time
}

func (c *limitedConn) current() (http.ConnState, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state, c.since
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.releaseOnce.Do(c.release)
	return err
}

// CloseWrite lets net/http half-close the connection after an error answer, as it does on a bare
// TCP connection, so that the client reads the answer before the connection is reset.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
