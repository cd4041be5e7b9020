package main_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/sidecar"
)

// TestHostileInputs sends hostile values through the CLI and the local
// API: each gets a clear error, nothing is written, and the sidecar stays
// healthy. (Wildcards are legal names: they are stored literally, which
// TestHandoffWildcardAgentsIsolated and the httpx tests cover.)
func TestHostileInputs(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir)
	huge := strings.Repeat("x", 70<<10)
	cliCases := []struct {
		agent string
		args  []string
	}{
		{"alice", []string{"claim", "src/a\x1bb"}},              // control character
		{"alice", []string{"claim", "src/\xff"}},                // invalid UTF-8
		{"alice", []string{"claim", strings.Repeat("d/", 600)}}, // too long, too deep
		{"alice", []string{"claim", "a/../../etc"}},
		{"alice", []string{"release", "..\\..\\x/../.."}},
		{"al\u200bice", []string{"claim", "src/x"}},                  // invisible character in the agent
		{"\u202eecila", []string{"claim", "src/x"}},                  // right-to-left override
		{"alice", []string{"broadcast", "ops\u200b", "hi"}},          // invisible character in a channel
		{"alice", []string{"broadcast", "ops", huge}},                // message over 64 KiB
		{"alice", []string{"handoff", "bob", huge, "m"}},             // artifact over 4 KiB
		{"alice", []string{"handoff", "bo\u00adb", "artifact", "m"}}, // soft hyphen in the recipient
		{"alice", []string{"checkpoint", "ready\x7f"}},               // DEL (argv cannot hold a NUL)
		{"alice", []string{"checkpoint", "re\u2060ady"}},
	}
	for _, tc := range cliCases {
		r := cli(t, dir, tc.agent, tc.args...)
		if r.code == 0 {
			t.Errorf("coord-agent %.60q as %q: succeeded", tc.args, tc.agent)
			continue
		}
		if msg := strings.TrimSpace(r.stderr); msg == "" || strings.Contains(msg, "panic") || strings.Contains(msg, "goroutine ") {
			t.Errorf("coord-agent %.60q as %q: no clear error:\n%s", tc.args, tc.agent, r.stderr)
		}
	}

	var sendToken func(method, path, agent, token string, body []byte) (int, string)
	send := func(method, path, agent string, body []byte) (int, string) {
		return sendToken(method, path, agent, p.token, body)
	}
	sendToken = func(method, path, agent, token string, body []byte) (int, string) {
		req, err := http.NewRequest(method, p.info.HTTP+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if agent != "" {
			req.Header.Set("X-Coord-Agent", agent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	apiCases := []struct {
		name, path, agent, body string
		want                    int // 0: any 4xx
	}{
		{"extra field", "/v1/claims", "alice", `{"path":"src/x","agent":"bob"}`, http.StatusBadRequest},
		{"duplicate field", "/v1/claims", "alice", `{"path":"src/x","PATH":"src/y"}`, http.StatusBadRequest},
		{"trailing data", "/v1/claims", "alice", `{"path":"src/x"} {"path":"src/y"}`, http.StatusBadRequest},
		{"wrong type", "/v1/claims", "alice", `{"path":["src/x"]}`, http.StatusBadRequest},
		{"dotdot", "/v1/claims", "alice", `{"path":"../x"}`, http.StatusBadRequest},
		{"control character", "/v1/claims", "alice", `{"path":"src/\u0007"}`, 0},
		{"huge body", "/v1/claims", "alice", `{"path":"` + strings.Repeat("a", 2<<20) + `"}`, http.StatusRequestEntityTooLarge},
		{"body just over 1 MiB", "/v1/broadcasts/ops", "alice", `{"message":"` + strings.Repeat("m", sidecar.MaxBody) + `"}`, http.StatusRequestEntityTooLarge},
		{"invisible agent", "/v1/claims", "al\u200bice", `{"path":"src/x"}`, 0},
		{"handoff extra field", "/v1/handoffs", "alice", `{"to":"bob","artifact":"x","from":"carol"}`, http.StatusBadRequest},
		{"handoff huge artifact", "/v1/handoffs", "alice", `{"to":"bob","artifact":"` + strings.Repeat("x", coord.MaxArtifactBytes+1) + `"}`, 0},
		{"broadcast huge", "/v1/broadcasts/ops", "alice", `{"message":"` + huge + `"}`, 0},
		{"broadcast extra field", "/v1/broadcasts/ops", "alice", `{"message":"hi","from":"bob"}`, http.StatusBadRequest},
	}
	for _, tc := range apiCases {
		code, body := send("POST", tc.path, tc.agent, []byte(tc.body))
		if code < 400 || code >= 500 || (tc.want != 0 && code != tc.want) {
			t.Errorf("%s: %d %.200s, want %d (0: a 4xx)", tc.name, code, body, tc.want)
			continue
		}
		var e sidecar.ErrorBody
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
			t.Errorf("%s: no JSON error: %.200s", tc.name, body)
		}
	}

	// Without the token nothing passes but health.
	for _, tok := range []string{"", "not-the-token", p.token + "x"} {
		if code, body := sendToken("POST", "/v1/claims", "alice", tok, []byte(`{"path":"src/x"}`)); code != http.StatusUnauthorized {
			t.Errorf("claim with token %q: %d %.200s, want 401", tok, code, body)
		}
	}
	if code, body := sendToken("GET", "/v1/health", "", "", nil); code != http.StatusOK {
		t.Errorf("health without the token: %d %s", code, body)
	}

	// Nothing written, and the sidecar still answers.
	var claims []coord.Claim
	mustJSON(t, dir, "alice", &claims, "claims")
	if len(claims) != 0 {
		t.Errorf("hostile input left claims: %+v", claims)
	}
	var st sidecar.Status
	mustJSON(t, dir, "bob", &st, "status")
	for _, s := range st.Stores {
		if s.Messages != 0 {
			t.Errorf("hostile input left %d messages in %s", s.Messages, s.Name)
		}
	}
	if code, body := send("GET", "/v1/health", "", nil); code != http.StatusOK {
		t.Fatalf("health after hostile input: %d %s", code, body)
	}
	if !p.running() {
		t.Fatal("the sidecar died")
	}
}
