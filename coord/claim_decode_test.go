package coord

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestParseClaimRecordMatchesJSON(t *testing.T) {
	at := time.Date(2026, 11, 27, 7, 50, 1, 123456789, time.UTC)
	recs := []claimRecord{
		{Path: "src/main.go", Agent: "alice", Reason: "edit", ClaimedAt: at, TTLSeconds: 30, Client: "c1", Lease: "l1"},
		{Path: "a", Agent: "b", ClaimedAt: at, TTLSeconds: 1, Lease: "l", Token: 42, Waiters: true},
		{Path: "x/y", Agent: "ümlaut", Reason: "", ClaimedAt: at.In(time.FixedZone("x", 3600)), TTLSeconds: 86400, Lease: "l", Token: 7},
	}
	for _, want := range recs {
		data := want.encode()
		got, ok := parseClaimRecord(data)
		if !ok {
			t.Fatalf("fast path refused %s", data)
		}
		var viaJSON claimRecord
		if err := json.Unmarshal(data, &viaJSON); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, viaJSON) {
			t.Fatalf("fast path %+v, encoding/json %+v", got, viaJSON)
		}
	}
	// Escaped strings and other shapes fall back to encoding/json.
	for _, data := range []string{
		`{"path":"a\"b","agent":"x","reason":"","claimed_at":"2026-11-27T07:50:01Z","ttl_seconds":1,"lease":"l"}`,
		`{"agent":"x","path":"a","reason":"","claimed_at":"2026-11-27T07:50:01Z","ttl_seconds":1,"lease":"l"}`,
		`{"path":"a","agent":"x","reason":"","claimed_at":"2026-11-27T07:50:01Z","ttl_seconds":1,"lease":"l"} `,
	} {
		if _, ok := parseClaimRecord([]byte(data)); ok {
			t.Fatalf("fast path accepted %s", data)
		}
	}
}

// FuzzParseClaimRecord: whenever the fast path accepts a value, encoding/json
// reads the same record from it.
func FuzzParseClaimRecord(f *testing.F) {
	at := time.Date(2026, 11, 27, 7, 50, 1, 0, time.UTC)
	f.Add(claimRecord{Path: "src/a.go", Agent: "a", Reason: "r", ClaimedAt: at, TTLSeconds: 30, Client: "c", Lease: "l", Token: 3, Waiters: true}.encode())
	f.Add([]byte(`{"path":"a","agent":"x","reason":"","claimed_at":"2026-11-27T07:50:01Z","ttl_seconds":01,"lease":"l"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := parseClaimRecord(data)
		if !ok {
			return
		}
		var viaJSON claimRecord
		if err := json.Unmarshal(data, &viaJSON); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refused it: %v", data, err)
		}
		if !reflect.DeepEqual(got, viaJSON) {
			t.Fatalf("%q: fast path %+v, encoding/json %+v", data, got, viaJSON)
		}
	})
}

func TestClaimRecordEncodeMatchesJSON(t *testing.T) {
	at := time.Date(2026, 11, 27, 7, 50, 1, 123456789, time.UTC)
	recs := []claimRecord{
		{Path: "src/main.go", Agent: "alice", Reason: "edit", ClaimedAt: at, TTLSeconds: 30, Client: "c1", Lease: "l1"},
		{Path: "a", Agent: "b", ClaimedAt: at.Truncate(time.Second), TTLSeconds: 1, Lease: "l", Token: 42, Waiters: true},
		{Path: "x/ümlaut", Agent: "日本", ClaimedAt: at.In(time.FixedZone("x", -3600)), TTLSeconds: 86400, Lease: "l", Token: 7},
		{Path: "a<b>&c", Agent: "q\"uote", Reason: "line\nbreak\u2028", ClaimedAt: at, TTLSeconds: 5, Lease: "l"},
		{Path: "bad\xffutf8", Agent: "a", ClaimedAt: at, TTLSeconds: 5, Lease: "l"},
	}
	for _, r := range recs {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.encode(); string(got) != string(want) {
			t.Errorf("encode:\n got %s\nwant %s", got, want)
		}
		if got, ok := parseClaimRecord(r.encode()); ok && !reflect.DeepEqual(got, func() claimRecord { var v claimRecord; _ = json.Unmarshal(want, &v); return v }()) {
			t.Errorf("round trip of %s differs", want)
		}
	}
}

// FuzzClaimRecordEncode: the hand-written encoder writes exactly what
// json.Marshal writes, whatever the strings hold.
func FuzzClaimRecordEncode(f *testing.F) {
	f.Add("src/a.go", "alice", "edit", "lease", int64(30), uint64(0), false)
	f.Add("a<b", "q\"x", "\u2028", "l", int64(1), uint64(9), true)
	f.Fuzz(func(t *testing.T, path, agent, reason, lease string, ttl int64, token uint64, waiters bool) {
		r := claimRecord{Path: path, Agent: agent, Reason: reason, ClaimedAt: time.Unix(ttl, ttl%1e9).UTC(),
			TTLSeconds: ttl, Lease: lease, Token: token, Waiters: waiters}
		want, err := json.Marshal(r)
		if err != nil {
			return
		}
		if got := r.encode(); string(got) != string(want) {
			t.Fatalf("encode:\n got %s\nwant %s", got, want)
		}
	})
}
