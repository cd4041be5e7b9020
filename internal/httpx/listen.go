package httpx

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// ErrNotLoopback: a TCP address for the local API that other hosts could
// reach.
var ErrNotLoopback = errors.New("httpx: the local API listens on loopback or a Unix socket only")

// Listen opens the local API's listener. "unix:/path" is a Unix socket of
// mode 0600 (only this user may connect): it is bound under a temporary
// name, restricted, then renamed into place, so no one can connect while
// it is still open to others. Anything else is a TCP address whose host
// must be a loopback address ("127.0.0.1:0", "[::1]:8080",
// "localhost:7070"; an empty host is refused: it means every interface).
func Listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return listenUnix(path)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("httpx: %q: %w", addr, err)
	}
	if err := checkLoopback(host); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("httpx: %w", err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("%w: %s bound %s", ErrNotLoopback, addr, ln.Addr())
	}
	return ln, nil
}

func checkLoopback(host string) error {
	if host == "" {
		return fmt.Errorf("%w: an empty host listens on every interface", ErrNotLoopback)
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("%w: %s is not a loopback address", ErrNotLoopback, host)
		}
		return nil
	}
	if host != "localhost" {
		return fmt.Errorf("%w: host %q (use 127.0.0.1, ::1 or localhost)", ErrNotLoopback, host)
	}
	return nil
}

func listenUnix(path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("httpx: empty Unix socket path")
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("httpx: %s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil { // a stale socket of an earlier run
			return nil, fmt.Errorf("httpx: %w", err)
		}
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("httpx: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(path), ".sock-"+hex.EncodeToString(rnd[:]))
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("httpx: %w", err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("httpx: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return &unixListener{UnixListener: ul, path: path}, nil
}

// unixListener removes its socket file on Close.
type unixListener struct {
	*net.UnixListener
	path string
}

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// Addr reports the final path, not the temporary one it was bound to.
func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }
