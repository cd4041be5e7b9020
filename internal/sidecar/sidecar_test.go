package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/testenv"
)

func start(t *testing.T, cfg Config) *Sidecar {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.PortSet = true
	cfg.Log = zerolog.New(zerolog.NewTestWriter(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

func post(t *testing.T, s *Sidecar, path, agent string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.Info().HTTP+path, bytes.NewReader(b))
	req.Header.Set(HeaderAgent, agent)
	req.Header.Set("Authorization", "Bearer "+s.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

// TestShutdownReleases: a joined sidecar's Shutdown releases the claims
// it holds (for every agent) at once, and removes sidecar.json.
func TestShutdownReleases(t *testing.T) {
	srv := testenv.Start(t)
	s := start(t, Config{NATSURL: srv.URL(), Agent: "side"})
	if s.Info().Mode != "joined" {
		t.Fatalf("mode %q", s.Info().Mode)
	}
	for _, agent := range []string{"a", "b"} {
		if code, body := post(t, s, "/v1/claims", agent, ClaimRequest{Path: "p/" + agent, TTL: "1h"}); code != http.StatusOK {
			t.Fatalf("claim for %s: %d %s", agent, code, body)
		}
	}
	if got := len(s.agents.held()); got != 2 {
		t.Fatalf("held: %d, want 2", got)
	}
	if _, err := ReadInfo(s.Info().DataDir); err != nil {
		t.Fatalf("sidecar.json: %v", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(InfoPath(s.Info().DataDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sidecar.json should be removed on shutdown: %v", err)
	}
	c, err := coord.Connect(context.Background(), srv.URL(), coord.WithAgent("watcher"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range []string{"p/a", "p/b"} {
		if ok, err := c.IsClaimed(context.Background(), p); err != nil || ok {
			t.Errorf("%s after shutdown: claimed %v, err %v (want released)", p, ok, err)
		}
	}
	// After shutdown the API is gone.
	if _, err := http.Get(s.Info().HTTP + "/v1/health"); err == nil {
		t.Error("API still answers after shutdown")
	}
}

// TestEmbedded starts the default embedded server on a free port and
// checks it is reachable by URL, with its store under the data dir.
func TestEmbedded(t *testing.T) {
	dir := t.TempDir()
	s := start(t, Config{DataDir: dir, Port: 0})
	in := s.Info()
	if in.Mode != "embedded" || in.StoreDir != dir+"/jetstream" {
		t.Fatalf("info: %+v", in)
	}
	c, err := coord.Connect(context.Background(), in.NATSURL, coord.WithAgent("x"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.TryAcquire(context.Background(), "f"); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", in.HTTP+"/v1/claims/f", nil)
	req.Header.Set("Authorization", "Bearer "+s.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cl coord.Claim
	if err := json.NewDecoder(resp.Body).Decode(&cl); err != nil || cl.Agent != "x" {
		t.Errorf("owner through the API: %+v %v", cl, err)
	}
}

// TestStartErrors: bad configurations fail at start with a clear error.
func TestStartErrors(t *testing.T) {
	srv := testenv.Start(t)
	cases := []Config{
		{NATSURL: srv.URL(), ConfigFile: "nats.conf"},
		{ConfigFile: "/no/such/file.conf"},
		{NATSURL: "nats://127.0.0.1:1"},
	}
	for _, cfg := range cases {
		cfg.DataDir, cfg.HTTPAddr, cfg.Log = t.TempDir(), "127.0.0.1:0", zerolog.Nop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := Start(ctx, cfg)
		cancel()
		if err == nil {
			s.Shutdown(context.Background())
			t.Errorf("Start(%+v): no error", cfg)
		}
	}
	// The HTTP address in use.
	s := start(t, Config{NATSURL: srv.URL()})
	cfg := Config{NATSURL: srv.URL(), DataDir: t.TempDir(), HTTPAddr: s.ln.Addr().String(), Log: zerolog.Nop()}
	if s2, err := Start(context.Background(), cfg); err == nil {
		s2.Shutdown(context.Background())
		t.Error("second sidecar on the same HTTP address started")
	}
}

func TestErrorBody(t *testing.T) {
	cases := []struct {
		err  error
		code int
		want string
	}{
		{&coord.ClaimedError{Path: "p", Owner: "o"}, 409, CodeClaimed},
		{fmt.Errorf("x: %w", coord.ErrNotOwner), 403, CodeNotOwner},
		{coord.ErrNotClaimed, 404, CodeNotClaimed},
		{coord.ErrTimeout, 408, CodeTimeout},
		{&coord.CheckpointTimeoutError{Name: "c", Missing: []string{"b"}}, 408, CodeTimeout},
		{coord.ErrInvalidPath, 400, CodeInvalid},
		{errInvalid, 400, CodeInvalid},
		{coord.ErrUnavailable, 503, CodeUnavailable},
		{coord.ErrHandoffNotFound, 404, CodeNotFound},
		{coord.ErrNotRecipient, 403, CodeNotRecipient},
		{coord.ErrHandoffDecided, 409, CodeDecided},
		{coord.ErrEmptyMessage, 400, CodeInvalid},
		{errors.New("boom"), 500, CodeInternal},
	}
	for _, c := range cases {
		code, b := errorBody(c.err)
		if code != c.code || b.Code != c.want {
			t.Errorf("%v: got %d %s, want %d %s", c.err, code, b.Code, c.code, c.want)
		}
	}
	_, b := errorBody(&coord.ClaimedError{Path: "p", Owner: "olga"})
	if b.Owner != "olga" {
		t.Errorf("claimed body owner %q", b.Owner)
	}
	_, b = errorBody(&coord.CheckpointTimeoutError{Name: "c", Missing: []string{"b"}, Arrived: []string{"a"}})
	if len(b.Missing) != 1 || b.Missing[0] != "b" || len(b.Arrived) != 1 {
		t.Errorf("timeout body: %+v", b)
	}
}

// TestUnixSocket: --http unix:/path serves the API on a socket only this
// user can open.
func TestUnixSocket(t *testing.T) {
	srv := testenv.Start(t)
	sock := t.TempDir() + "/api.sock"
	cfg := Config{NATSURL: srv.URL(), DataDir: t.TempDir(), HTTPAddr: "unix:" + sock, Log: zerolog.New(zerolog.NewTestWriter(t))}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if s.Info().HTTP != "unix:"+sock {
		t.Fatalf("info http %q", s.Info().HTTP)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi, err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Get("http://unix/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health over the socket: %d", resp.StatusCode)
	}
}
