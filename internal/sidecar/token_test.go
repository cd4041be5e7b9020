package sidecar

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/testenv"
)

// TestLocalAPIToken: the sidecar writes a fresh token to a 0600 file in
// its data dir; every route but health needs it; bodies are strict and
// bounded, and a refused request writes nothing.
func TestLocalAPIToken(t *testing.T) {
	srv := testenv.Start(t)
	s := start(t, Config{NATSURL: srv.URL(), Agent: "side"})
	dir := s.Info().DataDir
	fi, err := os.Stat(TokenFile(dir))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v, want mode 0600", fi, err)
	}
	t.Setenv(TokenEnv, "")
	if tok, err := ReadToken(dir); err != nil || tok != s.Token() || len(tok) < 40 {
		t.Fatalf("ReadToken: %q %v, want the sidecar's token", tok, err)
	}
	send := func(method, path, token string, body io.Reader) (int, ErrorBody) {
		t.Helper()
		req, _ := http.NewRequest(method, s.Info().HTTP+path, body)
		req.Header.Set(HeaderAgent, "alice")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		return resp.StatusCode, eb
	}
	if code, _ := send("GET", "/v1/health", "", nil); code != http.StatusOK {
		t.Fatalf("health without the token: %d", code)
	}
	for _, tok := range []string{"", "wrong", strings.ToUpper(s.Token())} {
		if code, eb := send("POST", "/v1/claims", tok, strings.NewReader(`{"path":"a"}`)); code != http.StatusUnauthorized || eb.Code != "unauthorized" {
			t.Errorf("claim with token %q: %d %+v, want 401", tok, code, eb)
		}
	}
	over := `{"path":"` + strings.Repeat("a", MaxBody) + `"}`
	// chunked hides the length, so the limit is hit while decoding.
	chunked := func(s string) io.Reader { return io.MultiReader(strings.NewReader(s)) }
	for _, tc := range []struct {
		name string
		body io.Reader
		want int
	}{
		{"unknown field", strings.NewReader(`{"path":"a","agent":"bob"}`), http.StatusBadRequest},
		{"duplicate key", strings.NewReader(`{"path":"a","Path":"b"}`), http.StatusBadRequest},
		{"trailing data", strings.NewReader(`{"path":"a"}x`), http.StatusBadRequest},
		{"over the limit", strings.NewReader(over), http.StatusRequestEntityTooLarge},
		{"over the limit, chunked", chunked(over), http.StatusRequestEntityTooLarge},
		{"unknown field, chunked", chunked(`{"path":"a","x":1}`), http.StatusBadRequest},
	} {
		if code, eb := send("POST", "/v1/claims", s.Token(), tc.body); code != tc.want || eb.Error == "" {
			t.Errorf("%s: %d %+v, want %d with an error", tc.name, code, eb, tc.want)
		}
	}
	if held := s.agents.held(); len(held) != 0 {
		t.Fatalf("refused requests left claims: %+v", held)
	}
	// The right token with a clean body works; an empty body stays optional.
	if code, eb := send("POST", "/v1/claims", s.Token(), bytes.NewReader([]byte(`{"path":"a"}`))); code != http.StatusOK {
		t.Fatalf("claim with the token: %d %+v", code, eb)
	}
	if code, eb := send("POST", "/v1/checkpoints/c/arrive", s.Token(), nil); code != http.StatusOK {
		t.Fatalf("arrive without a body: %d %+v", code, eb)
	}
	// A holder with a wrong token is refused.
	if _, err := NewHolder(s.Info().HTTP, "wrong").HoldClaim(t.Context(), coord.ClaimRequest{Agent: "alice", Path: "b"}); err == nil {
		t.Fatal("holder with a wrong token could claim")
	}
	// COG_SIDECAR_TOKEN serves clients that do not share the data dir.
	t.Setenv(TokenEnv, s.Token())
	if tok, err := ReadToken(t.TempDir()); err != nil || tok != s.Token() {
		t.Fatalf("ReadToken from $%s: %q %v", TokenEnv, tok, err)
	}
}
