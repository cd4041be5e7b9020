package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/subjects"
	"github.com/cogos-dev/coord/testenv"
)

// testAPI is the smallest local API wired the way the sidecar should be:
// token middleware (health open), a body limit, strict decoding, and
// coord's validators behind them.
func testAPI(t *testing.T, c *coord.Client, token string) http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, code int, err error) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
	}
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		if !c.Conn().IsConnected() {
			fail(w, http.StatusServiceUnavailable, errors.New("disconnected"))
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("POST /v1/claims", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Path   string `json:"path"`
			Reason string `json:"reason"`
		}
		if err := DecodeRequest(w, r, 64<<10, &req); err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		if _, err := c.TryAcquire(r.Context(), req.Path, coord.WithReason(req.Reason)); err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("POST /v1/handoffs", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			To       string   `json:"to"`
			Artifact string   `json:"artifact"`
			Message  string   `json:"message"`
			Claims   []string `json:"claims"`
		}
		if err := DecodeRequest(w, r, 256<<10, &req); err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		if _, err := c.Handoff(r.Context(), req.To, req.Artifact, req.Message, coord.WithClaims(req.Claims...)); err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	return LimitBody(512 << 10)(RequireToken(token, "/v1/health")(mux))
}

func TestHostileInputsThroughLocalAPI(t *testing.T) {
	srv := testenv.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := coord.New(ctx, coord.WithURL(srv.URL()), coord.WithAgent("alice"), coord.WithNamespace("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	token, _ := NewToken()
	ts := httptest.NewServer(testAPI(t, c, token))
	defer ts.Close()

	do := func(method, path, body string, auth bool) (int, string) {
		req, err := http.NewRequestWithContext(ctx, method, ts.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	long := strings.Repeat("a", subjects.MaxPathBytes+1)
	cases := []struct {
		name, path, body string
		want             int
	}{
		{"no token", "/v1/claims", `{"path":"src/a.go"}`, http.StatusUnauthorized},
		{"wildcard path", "/v1/claims", `{"path":"src/*"}`, 0},
		{"full wildcard", "/v1/claims", `{"path":">"}`, 0},
		{"dotdot", "/v1/claims", `{"path":"../etc/passwd"}`, http.StatusBadRequest},
		{"absolute", "/v1/claims", `{"path":"/etc/passwd"}`, http.StatusBadRequest},
		{"NUL", "/v1/claims", `{"path":"a\u0000b"}`, http.StatusBadRequest},
		{"control", "/v1/claims", `{"path":"a\u001bb"}`, http.StatusBadRequest},
		{"huge path", "/v1/claims", `{"path":"` + long + `"}`, http.StatusBadRequest},
		{"huge reason", "/v1/claims", `{"path":"r.go","reason":"` + strings.Repeat("r", 5000) + `"}`, http.StatusBadRequest},
		{"huge body", "/v1/claims", `{"path":"` + strings.Repeat("a", 1<<20) + `"}`, http.StatusRequestEntityTooLarge},
		{"invalid UTF-8", "/v1/claims", "{\"path\":\"a\xffb\"}", http.StatusBadRequest},
		{"extra field", "/v1/claims", `{"path":"x.go","agent":"bob"}`, http.StatusBadRequest},
		{"duplicate field", "/v1/claims", `{"path":"x.go","PATH":"y.go"}`, http.StatusBadRequest},
		{"trailing data", "/v1/claims", `{"path":"x.go"} {"path":"y.go"}`, http.StatusBadRequest},
		{"handoff to wildcard", "/v1/handoffs", `{"to":"*","artifact":"x"}`, 0},
		{"handoff to invisible", "/v1/handoffs", `{"to":"bo\u200bb","artifact":"x"}`, http.StatusBadRequest},
		{"handoff to space", "/v1/handoffs", `{"to":"bo b","artifact":"x"}`, http.StatusBadRequest},
		{"handoff huge artifact", "/v1/handoffs", `{"to":"bob","artifact":"` + strings.Repeat("x", coord.MaxArtifactBytes+1) + `"}`, http.StatusBadRequest},
		{"handoff too many claims", "/v1/handoffs", `{"to":"bob","artifact":"x","claims":[` + strings.Repeat(`"a",`, coord.MaxHandoffClaims) + `"b"]}`, http.StatusBadRequest},
		{"handoff claim not held", "/v1/handoffs", `{"to":"bob","artifact":"x","claims":["../x"]}`, http.StatusBadRequest},
		{"handoff extra field", "/v1/handoffs", `{"to":"bob","artifact":"x","from":"carol"}`, http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do("POST", tc.path, tc.body, tc.name != "no token")
			if tc.want == 0 {
				// Wildcards are legal names: encoded, they match only
				// themselves. They must be stored under their own literal
				// key, which the checks below look at.
				if code != http.StatusCreated {
					t.Fatalf("%d %s, want 201", code, body)
				}
				return
			}
			if code != tc.want {
				t.Fatalf("%d %s, want %d", code, body, tc.want)
			}
			if !strings.Contains(body, `"error"`) && code != http.StatusRequestEntityTooLarge {
				t.Fatalf("no JSON error in %q", body)
			}
		})
	}
	// Nothing written but the three legal wildcard names, each literal.
	claims, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, cl := range claims {
		paths = append(paths, cl.Path)
	}
	if fmt.Sprint(paths) != "[> src/*]" && fmt.Sprint(paths) != "[src/* >]" {
		t.Fatalf("claims written: %q, want only the literal wildcard paths", paths)
	}
	st, err := c.JetStream().Stream(ctx, subjects.HandoffStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) != 1 {
		t.Fatalf("handoff subjects written: %v, want one (to the agent literally named *)", info.State.Subjects)
	}
	for s := range info.State.Subjects {
		if !strings.HasPrefix(s, "coord.handoff.test.=2A.") {
			t.Fatalf("handoff stored on %s", s)
		}
	}
	if code, _ := do("GET", "/v1/health", "", false); code != http.StatusOK {
		t.Fatalf("health after hostile input: %d", code)
	}
}
