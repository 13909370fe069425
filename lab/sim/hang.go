package sim

import (
	"net"
	"sync"
	"time"
)

// The hang of Config.HangPoolBytes: when the leak exhausts nonpaged pool, Windows stops
// answering without closing anything. The model holds WinRM at the socket: new connections
// are accepted by the kernel's backlog but never read, and open ones stop being read or
// written, until the boot ends.

// hangCheckEvery is how often the pool is compared with the limit.
const hangCheckEvery = 100 * time.Millisecond

// watchPool closes b.hung once the pool passes the limit.
func (g *Machine) watchPool(b *boot) {
	t := time.NewTicker(hangCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-b.down:
			return
		case <-t.C:
		}
		if p := b.kern.Pool(b.uptime()); p.Bytes > g.cfg.HangPoolBytes {
			g.logf("nonpaged pool %d bytes passed the hang limit of %d bytes: the guest stops answering until the next boot", p.Bytes, g.cfg.HangPoolBytes)
			close(b.hung)
			return
		}
	}
}

// maxHeld bounds the connections a hung listener holds.
const maxHeld = 256

// hangListener stops handing out connections once hung is closed; it holds them unanswered
// until it is closed.
type hangListener struct {
	net.Listener
	hung <-chan struct{}
	mu   sync.Mutex
	held []net.Conn
}

func (l *hangListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case <-l.hung:
			l.mu.Lock()
			if len(l.held) < maxHeld {
				l.held = append(l.held, c)
			} else {
				c.Close() // bound the file descriptors a retrying client can pin
			}
			l.mu.Unlock()
		default:
			return &hangConn{Conn: c, hung: l.hung, closed: make(chan struct{})}, nil
		}
	}
}

func (l *hangListener) Close() error {
	l.mu.Lock()
	for _, c := range l.held {
		c.Close()
	}
	l.held = nil
	l.mu.Unlock()
	return l.Listener.Close()
}

// hangConn stops reading and writing once hung is closed, until it is closed itself.
type hangConn struct {
	net.Conn
	hung   <-chan struct{}
	once   sync.Once
	closed chan struct{}
}

func (c *hangConn) hold() error {
	select {
	case <-c.hung:
		<-c.closed
		return net.ErrClosed
	default:
		return nil
	}
}

func (c *hangConn) Read(p []byte) (int, error) {
	if err := c.hold(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if herr := c.hold(); herr != nil {
		return 0, herr // a request that arrived after the hang is never seen
	}
	return n, err
}

func (c *hangConn) Write(p []byte) (int, error) {
	if err := c.hold(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *hangConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
