package testenv

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/coord/embedded"
)

// Server is one embedded nats-server with JetStream on a loopback port.
type Server struct {
	t        testing.TB
	mu       sync.Mutex
	srv      *server.Server
	storeDir string
	port     int
	opts     []Option
}

// Option adjusts the server options of a test server.
type Option func(*server.Options)

// WithOptions lets a test change any server option (auth, limits, ...).
func WithOptions(f func(*server.Options)) Option { return Option(f) }

// Start runs a fresh server with its store in t.TempDir() and shuts it down
// when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t, storeDir: t.TempDir(), port: server.RANDOM_PORT, opts: opts}
	s.start()
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	o, err := embedded.Options(embedded.Config{StoreDir: s.storeDir, Port: s.port})
	if err != nil {
		s.t.Fatalf("testenv: %v", err)
	}
	o.NoLog = false
	for _, f := range s.opts {
		f(o)
	}
	srv, err := embedded.Start(o, &tlog{t: s.t})
	if err != nil {
		s.t.Fatalf("testenv: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv = srv
	if addr, ok := srv.Addr().(*net.TCPAddr); ok {
		// Keep the port across restarts so clients reconnect to the same URL.
		s.port = addr.Port
	}
}

// URL is the client URL, stable across restarts.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", s.port)
}

// StoreDir is the server's JetStream store directory.
func (s *Server) StoreDir() string { return s.storeDir }

// NATS returns the running server.
func (s *Server) NATS() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Shutdown stops the server; it is safe to call more than once.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart shuts the server down and starts it again on the same port with
// the same store: what was acknowledged before must still be there.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.start()
}

// Connect opens a client connection that reconnects forever (across
// Restart) and is closed when the test ends.
func (s *Server) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	base := []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20 * 1e6),
		nats.Name(t.Name()),
	}
	base = append(base, s.BenchOptions(t)...)
	nc, err := nats.Connect(s.URL(), append(base, opts...)...)
	if err != nil {
		t.Fatalf("testenv: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// BenchOptions are the connection options benchmarks add: an in-process
// connection (no socket), as the sidecar's agents have to its embedded
// server, unless COORD_BENCH_TCP=1 asks for loopback TCP. Tests get none.
func (s *Server) BenchOptions(t testing.TB) []nats.Option {
	if _, bench := t.(*testing.B); !bench || os.Getenv("COORD_BENCH_TCP") == "1" {
		return nil
	}
	return []nats.Option{nats.InProcessServer(s.NATS())}
}

// JetStream opens a connection and returns its JetStream context.
func (s *Server) JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(s.Connect(t))
	if err != nil {
		t.Fatalf("testenv: jetstream: %v", err)
	}
	return js
}

// tlog sends server log lines to t.Log, so they print only for failing
// tests (or with -v). It goes quiet once the test has finished.
type tlog struct {
	t    testing.TB
	done atomic.Bool
}

func (l *tlog) logf(level, format string, v ...any) {
	if l.done.Load() {
		return
	}
	if _, bench := l.t.(*testing.B); bench && (level == "INF" || level == "DBG" || level == "TRC") {
		// Benchmarks print their logs even when they pass: keep only
		// what may explain a bad figure.
		return
	}
	defer func() {
		// t.Log panics after the test returns; a server shutting down late
		// must not take the test binary with it.
		if recover() != nil {
			l.done.Store(true)
		}
	}()
	l.t.Logf("nats-server %s: %s", level, fmt.Sprintf(format, v...))
}

func (l *tlog) Noticef(format string, v ...any) { l.logf("INF", format, v...) }
func (l *tlog) Warnf(format string, v ...any)   { l.logf("WRN", format, v...) }
func (l *tlog) Fatalf(format string, v ...any)  { l.logf("FTL", format, v...) }
func (l *tlog) Errorf(format string, v ...any)  { l.logf("ERR", format, v...) }
func (l *tlog) Debugf(format string, v ...any)  { l.logf("DBG", format, v...) }
func (l *tlog) Tracef(format string, v ...any)  { l.logf("TRC", format, v...) }
