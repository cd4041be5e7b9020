package coord

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf8"
)

// parseClaimRecord is a fast path for claim values exactly as claimRecord's
// encode writes them (json.Marshal: fixed field order, omitted empty
// optional fields, no escapes in the strings). It reports ok=false for
// anything else, which decodeClaim then reads with encoding/json. Listing
// 100,000 claims spent most of its client CPU in encoding/json;
// FuzzParseClaimRecord checks the two agree.
func parseClaimRecord(data []byte) (r claimRecord, ok bool) {
	p := claimParser{rest: data}
	if !p.lit(`{"path":`) || !p.str(&r.Path) ||
		!p.lit(`,"agent":`) || !p.str(&r.Agent) ||
		!p.lit(`,"reason":`) || !p.str(&r.Reason) ||
		!p.lit(`,"claimed_at":`) {
		return r, false
	}
	var ts string
	if !p.str(&ts) || r.ClaimedAt.UnmarshalText([]byte(ts)) != nil {
		return r, false
	}
	if !p.lit(`,"ttl_seconds":`) || !p.int(&r.TTLSeconds) {
		return r, false
	}
	if p.opt(`,"client":`) && !p.str(&r.Client) {
		return r, false
	}
	if !p.lit(`,"lease":`) || !p.str(&r.Lease) {
		return r, false
	}
	if p.opt(`,"token":`) {
		var t int64
		if !p.int(&t) || t <= 0 {
			return r, false
		}
		r.Token = uint64(t)
	}
	if p.opt(`,"waiters":`) {
		if !p.lit("true") {
			return r, false
		}
		r.Waiters = true
	}
	return r, p.lit("}") && len(p.rest) == 0
}

type claimParser struct{ rest []byte }

func (p *claimParser) lit(s string) bool {
	var ok bool
	p.rest, ok = bytes.CutPrefix(p.rest, []byte(s))
	return ok
}

// opt consumes s if it is next.
func (p *claimParser) opt(s string) bool { return p.lit(s) }

func (p *claimParser) str(dst *string) bool {
	s, rest, ok := plainString(p.rest)
	if !ok {
		return false
	}
	*dst, p.rest = s, rest
	return true
}

// int reads a non-negative decimal integer as json.Marshal writes one.
func (p *claimParser) int(dst *int64) bool {
	n := 0
	for n < len(p.rest) && p.rest[n] >= '0' && p.rest[n] <= '9' {
		n++
	}
	if n == 0 || n > 18 || (n > 1 && p.rest[0] == '0') {
		return false
	}
	v, err := strconv.ParseInt(string(p.rest[:n]), 10, 64)
	if err != nil {
		return false
	}
	*dst, p.rest = v, p.rest[n:]
	return true
}

// appendFast writes r exactly as json.Marshal does, for records whose
// strings need no escaping (json.Marshal is a measurable share of a
// claim+release); ok is false otherwise and the caller uses json.Marshal.
// TestClaimRecordEncodeMatchesJSON keeps the two byte-identical.
func (r claimRecord) appendFast(b []byte) ([]byte, bool) {
	for _, s := range [...]string{r.Path, r.Agent, r.Reason, r.Client, r.Lease} {
		if !jsonPlain(s) {
			return nil, false
		}
	}
	if y := r.ClaimedAt.Year(); y < 0 || y > 9999 {
		return nil, false
	}
	b = append(b, `{"path":"`...)
	b = append(b, r.Path...)
	b = append(b, `","agent":"`...)
	b = append(b, r.Agent...)
	b = append(b, `","reason":"`...)
	b = append(b, r.Reason...)
	b = append(b, `","claimed_at":"`...)
	b = r.ClaimedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","ttl_seconds":`...)
	b = strconv.AppendInt(b, r.TTLSeconds, 10)
	if r.Client != "" {
		b = append(b, `,"client":"`...)
		b = append(b, r.Client...)
		b = append(b, '"')
	}
	b = append(b, `,"lease":"`...)
	b = append(b, r.Lease...)
	b = append(b, '"')
	if r.Token != 0 {
		b = append(b, `,"token":`...)
		b = strconv.AppendUint(b, r.Token, 10)
	}
	if r.Waiters {
		b = append(b, `,"waiters":true`...)
	}
	return append(b, '}'), true
}

// jsonPlain reports whether json.Marshal writes s unchanged between quotes.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		case c >= utf8.RuneSelf:
			// U+2028 and U+2029 are escaped by json.Marshal, and invalid
			// UTF-8 is replaced: leave those to it.
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
				return false
			}
			i += size - 1
		}
	}
	return true
}
