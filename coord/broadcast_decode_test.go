package coord

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzParseWire: whenever the fast path accepts a body, encoding/json
// decodes it to the same value; bodies Publish writes always take the fast
// path and round-trip.
func FuzzParseWire(f *testing.F) {
	ts := time.Date(2026, 11, 27, 6, 0, 0, 123456789, time.UTC)
	for _, w := range []wireBroadcast{
		{Channel: "general", Agent: "alice", Message: "hello", Timestamp: ts},
		{Channel: "a.b", Agent: "*", Message: "quote \" and <tag> and \n newline", Timestamp: ts},
		{Channel: "ünï", Agent: "エージェント", Message: "emoji 🎉 \u2028", Timestamp: ts.In(time.FixedZone("x", 3600))},
	} {
		body, _ := json.Marshal(w)
		f.Add(body)
	}
	f.Add([]byte(`{"channel":"c","agent":"a","message":"m","timestamp":"2026-11-27T06:00:00Z"} `))
	f.Add([]byte(`{"channel":"c","agent":"a","message":"bad \xff","timestamp":"2026-11-27T06:00:00Z"}`))
	f.Add([]byte(`{"channel":"c","agent":"a","message":"m","timestamp":"2026-11-27T6:00:00Z"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := parseWire(body)
		if !ok {
			return
		}
		var slow wireBroadcast
		if err := json.Unmarshal(body, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", body, err)
		}
		if fast.Channel != slow.Channel || fast.Agent != slow.Agent || fast.Message != slow.Message ||
			!fast.Timestamp.Equal(slow.Timestamp) || fast.Timestamp.String() != slow.Timestamp.String() {
			t.Fatalf("fast %+v, encoding/json %+v for %q", fast, slow, body)
		}
	})
}

// TestParseWireRoundTrip: what Publish writes takes the fast path when its
// strings need no escaping, and decodes to what was written.
func TestParseWireRoundTrip(t *testing.T) {
	w := wireBroadcast{Channel: "general", Agent: "alice", Message: "all good, ünïcode 🎉", Timestamp: time.Now().UTC()}
	body, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := parseWire(body)
	if !ok || got.Channel != w.Channel || got.Agent != w.Agent || got.Message != w.Message || !got.Timestamp.Equal(w.Timestamp) {
		t.Fatalf("parseWire(%s) = %+v, %v", body, got, ok)
	}
	escaped := w
	escaped.Message = `needs "escapes"`
	body, _ = json.Marshal(escaped)
	if _, ok := parseWire(body); ok {
		t.Fatalf("fast path accepted an escaped string: %s", body)
	}
}
