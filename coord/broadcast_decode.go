package coord

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
)

// decodeBroadcast reads a stored broadcast. A body that does not parse, or
// lacks an agent or a message, is ErrBadValue.
func decodeBroadcast(m jetstream.Msg, md *jetstream.MsgMetadata, channel string) (Broadcast, error) {
	seq := md.Sequence.Stream
	w, ok := parseWire(m.Data())
	if !ok {
		if err := json.Unmarshal(m.Data(), &w); err != nil {
			return Broadcast{}, fmt.Errorf("%w: broadcast %d: %w", ErrBadValue, seq, err)
		}
	}
	if w.Agent == "" || w.Message == "" {
		return Broadcast{}, fmt.Errorf("%w: broadcast %d has no agent or no message", ErrBadValue, seq)
	}
	b := Broadcast{Channel: channel, Agent: w.Agent, Message: w.Message, Timestamp: w.Timestamp, Seq: seq}
	if b.Timestamp.IsZero() {
		b.Timestamp = md.Timestamp.UTC()
	}
	return b, nil
}

// parseWire is a fast path for bodies exactly as Publish writes them
// (json.Marshal of wireBroadcast: fixed field order, no escapes in the
// strings). It reports ok=false for anything else, which the caller then
// decodes with encoding/json: a live feed decodes every message once per
// subscriber, and encoding/json spent most of a feed's CPU doing it.
// FuzzParseWire checks it agrees with encoding/json.
func parseWire(data []byte) (w wireBroadcast, ok bool) {
	rest, ok := bytes.CutPrefix(data, []byte(`{"channel":`))
	if !ok {
		return w, false
	}
	if w.Channel, rest, ok = plainString(rest); !ok {
		return w, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"agent":`)); !ok {
		return w, false
	}
	if w.Agent, rest, ok = plainString(rest); !ok {
		return w, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"message":`)); !ok {
		return w, false
	}
	if w.Message, rest, ok = plainString(rest); !ok {
		return w, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"timestamp":`)); !ok {
		return w, false
	}
	var ts string
	if ts, rest, ok = plainString(rest); !ok || !bytes.Equal(rest, []byte("}")) {
		return w, false
	}
	// UnmarshalText is what time.Time's UnmarshalJSON applies to the
	// unquoted text: the same strict RFC 3339.
	if err := w.Timestamp.UnmarshalText([]byte(ts)); err != nil {
		return wireBroadcast{}, false
	}
	return w, true
}

// plainString reads a JSON string that holds no escape sequences and no
// bytes JSON would have to escape or replace, and returns it and the rest.
func plainString(data []byte) (s string, rest []byte, ok bool) {
	if len(data) == 0 || data[0] != '"' {
		return "", nil, false
	}
	for i := 1; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			raw := data[1:i]
			if !utf8.Valid(raw) {
				return "", nil, false
			}
			return string(raw), data[i+1:], true
		case c == '\\' || c < 0x20:
			return "", nil, false
		}
	}
	return "", nil, false
}
