package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// api is a client of the sidecar's local API as an agent in another
// language sees it: plain HTTP and JSON objects, no Go types of coord.
type api struct {
	t     *testing.T
	base  string
	token string // sent as Authorization: Bearer; "" sends none
}

// call sends a request as agent and decodes the JSON answer.
func (a api) call(method, path, agent string, body any) (int, map[string]any, []any) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if agent != "" {
		req.Header.Set("X-Coord-Agent", agent)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		a.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		a.t.Fatalf("%s %s: answer is not JSON: %v\n%s", method, path, err, raw)
	}
	obj, _ := v.(map[string]any)
	arr, _ := v.([]any)
	return resp.StatusCode, obj, arr
}

func (a api) ok(method, path, agent string, body any) (map[string]any, []any) {
	a.t.Helper()
	code, obj, arr := a.call(method, path, agent, body)
	if code != http.StatusOK {
		a.t.Fatalf("%s %s as %s: %d %v", method, path, agent, code, obj)
	}
	return obj, arr
}

// TestHTTPAPIFlow runs the CLI flow once through the local HTTP API.
func TestHTTPAPIFlow(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir)
	a := api{t: t, base: p.info.HTTP, token: p.token}

	if obj, _ := a.ok("GET", "/v1/health", "", nil); obj["status"] != "ok" {
		t.Fatalf("health: %v", obj)
	}
	// Without the token (or with a wrong one) only health answers.
	anon := api{t: t, base: p.info.HTTP}
	if code, obj, _ := anon.call("GET", "/v1/health", "", nil); code != http.StatusOK || obj["status"] != "ok" {
		t.Fatalf("health without the token: %d %v", code, obj)
	}
	wrong := api{t: t, base: p.info.HTTP, token: p.token + "x"}
	for _, c := range []api{anon, wrong} {
		if code, obj, _ := c.call("POST", "/v1/claims", "alice", map[string]any{"path": "src/stolen.go"}); code != http.StatusUnauthorized || obj["code"] != "unauthorized" {
			t.Fatalf("claim with token %q: %d %v, want 401", c.token, code, obj)
		}
		if code, _, _ := c.call("GET", "/v1/status", "alice", nil); code != http.StatusUnauthorized {
			t.Fatalf("status with token %q: %d, want 401", c.token, code)
		}
	}
	if _, list := a.ok("GET", "/v1/claims", "", nil); len(list) != 0 {
		t.Fatalf("unauthorized claims were written: %v", list)
	}
	// alice claims; bob is refused with 409 naming alice.
	cl, _ := a.ok("POST", "/v1/claims", "alice", map[string]any{"path": "src/main.go", "reason": "refactor", "ttl": "10s"})
	if cl["agent"] != "alice" || cl["path"] != "src/main.go" || cl["token"].(float64) < 1 || cl["ttl_seconds"].(float64) != 10 {
		t.Fatalf("claim: %v", cl)
	}
	code, obj, _ := a.call("POST", "/v1/claims", "bob", map[string]any{"path": "src/main.go"})
	if code != http.StatusConflict || obj["code"] != "claimed" || obj["owner"] != "alice" {
		t.Fatalf("bob's claim: %d %v", code, obj)
	}
	if obj, _ := a.ok("GET", "/v1/claims/src/main.go", "bob", nil); obj["agent"] != "alice" {
		t.Errorf("owner: %v", obj)
	}
	code, obj, _ = a.call("DELETE", "/v1/claims/src/main.go", "bob", nil)
	if code != http.StatusForbidden || obj["code"] != "not_owner" {
		t.Errorf("bob releasing alice's claim: %d %v", code, obj)
	}
	if _, list := a.ok("GET", "/v1/claims", "", nil); len(list) != 1 {
		t.Errorf("claims: %v", list)
	}

	// bob waits; alice's release hands it over.
	got := make(chan map[string]any, 1)
	go func() {
		_, obj, _ := a.call("POST", "/v1/claims", "bob", map[string]any{"path": "src/main.go", "wait": true, "timeout": "30s"})
		got <- obj
	}()
	time.Sleep(300 * time.Millisecond)
	a.ok("DELETE", "/v1/claims/src/main.go", "alice", nil)
	select {
	case obj := <-got:
		if obj["agent"] != "bob" {
			t.Fatalf("bob's waiting claim: %v", obj)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("bob's wait not unblocked by the release")
	}
	code, obj, _ = a.call("POST", "/v1/claims", "alice", map[string]any{"path": "src/main.go", "wait": true, "timeout": "500ms"})
	if code != http.StatusRequestTimeout || obj["code"] != "timeout" {
		t.Errorf("alice's wait with timeout: %d %v", code, obj)
	}
	code, obj, _ = a.call("GET", "/v1/claims/nobody/here", "", nil)
	if code != http.StatusNotFound || obj["code"] != "not_claimed" {
		t.Errorf("owner of a free path: %d %v", code, obj)
	}

	// Broadcast, list, and follow as NDJSON.
	freq, _ := http.NewRequest("GET", p.info.HTTP+"/v1/broadcasts/build?follow=1", nil)
	follow, err := http.DefaultClient.Do(p.authed(freq))
	if err != nil {
		t.Fatal(err)
	}
	defer follow.Body.Close()
	if ct := follow.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("follow Content-Type %q", ct)
	}
	b1, _ := a.ok("POST", "/v1/broadcasts/build", "alice", map[string]any{"message": "green"})
	a.ok("POST", "/v1/broadcasts/build", "bob", map[string]any{"message": "deploying"})
	if b1["seq"].(float64) < 1 || b1["channel"] != "build" {
		t.Errorf("publish: %v", b1)
	}
	if _, list := a.ok("GET", "/v1/broadcasts/build?since=1h", "", nil); len(list) != 2 || list[0].(map[string]any)["message"] != "green" {
		t.Errorf("broadcasts: %v", list)
	}
	sc := bufio.NewScanner(follow.Body)
	for _, want := range []string{"green", "deploying"} {
		if !sc.Scan() {
			t.Fatalf("follow ended: %v", sc.Err())
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m["message"] != want {
			t.Fatalf("follow line %q: want message %q (%v)", sc.Text(), want, err)
		}
	}
	// SSE, asked for with the Accept header.
	req, _ := http.NewRequest("GET", p.info.HTTP+"/v1/broadcasts/build?follow=1&since=1h", nil)
	req.Header.Set("Accept", "text/event-stream")
	sse, err := http.DefaultClient.Do(p.authed(req))
	if err != nil {
		t.Fatal(err)
	}
	defer sse.Body.Close()
	if ct := sse.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("SSE Content-Type %q", ct)
	}
	ssc := bufio.NewScanner(sse.Body)
	var data string
	for ssc.Scan() {
		if strings.HasPrefix(ssc.Text(), "data: ") {
			data = strings.TrimPrefix(ssc.Text(), "data: ")
			break
		}
	}
	if !strings.Contains(data, `"message":"green"`) {
		t.Errorf("first SSE event: %q", data)
	}

	// Handoff alice -> bob: listed, accepted by bob only.
	h, _ := a.ok("POST", "/v1/handoffs", "alice", map[string]any{"to": "bob", "artifact": "report.pdf", "message": "read this"})
	id, _ := h["id"].(string)
	if id == "" || h["status"] != "pending" {
		t.Fatalf("handoff: %v", h)
	}
	if _, list := a.ok("GET", "/v1/handoffs", "bob", nil); len(list) != 1 || list[0].(map[string]any)["id"] != id {
		t.Fatalf("bob's handoffs: %v", list)
	}
	code, obj, _ = a.call("POST", "/v1/handoffs/"+id+"/accept", "carol", nil)
	if code != http.StatusForbidden || obj["code"] != "not_recipient" {
		t.Errorf("carol accepting: %d %v", code, obj)
	}
	if obj, _ := a.ok("POST", "/v1/handoffs/"+id+"/accept", "bob", nil); obj["status"] != "accepted" {
		t.Errorf("accept: %v", obj)
	}
	if _, list := a.ok("GET", "/v1/handoffs?agent=bob", "alice", nil); len(list) != 0 {
		t.Errorf("handoffs after accept: %v", list)
	}
	code, obj, _ = a.call("POST", "/v1/handoffs/no-such-id/accept", "bob", nil)
	if code != http.StatusNotFound || obj["code"] != "not_found" {
		t.Errorf("accepting an unknown handoff: %d %v", code, obj)
	}

	// Checkpoint: a wait that times out names the missing agent.
	a.ok("POST", "/v1/checkpoints/done/arrive", "alice", nil)
	code, obj, _ = a.call("POST", "/v1/checkpoints/done/wait", "alice", map[string]any{"agents": []string{"alice", "bob"}, "timeout": "500ms"})
	if code != http.StatusRequestTimeout || obj["code"] != "timeout" || !strings.Contains(strings.Join(toStrings(obj["missing"]), ","), "bob") {
		t.Fatalf("wait with bob missing: %d %v", code, obj)
	}
	a.ok("POST", "/v1/checkpoints/done/arrive", "bob", nil)
	if obj, _ := a.ok("POST", "/v1/checkpoints/done/wait", "alice", map[string]any{"agents": []string{"alice", "bob"}, "timeout": "5s"}); len(toStrings(obj["arrived"])) != 2 {
		t.Errorf("wait: %v", obj)
	}
	if obj, _ := a.ok("GET", "/v1/checkpoints/done", "", nil); len(toStrings(obj["arrived"])) != 2 {
		t.Errorf("arrivals: %v", obj)
	}

	// Status and bad input.
	if obj, _ := a.ok("GET", "/v1/status", "bob", nil); obj["agent"] != "bob" || len(obj["claims"].([]any)) != 1 {
		t.Errorf("status: %v", obj)
	}
	for _, bad := range []struct{ method, path string }{
		{"POST", "/v1/claims"}, {"POST", "/v1/checkpoints/done/wait"},
	} {
		code, obj, _ := a.call(bad.method, bad.path, "bob", map[string]any{"path": "../escape", "ttl": "soon"})
		if code != http.StatusBadRequest || obj["code"] != "invalid" {
			t.Errorf("%s %s with bad input: %d %v", bad.method, bad.path, code, obj)
		}
	}
}

func toStrings(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
