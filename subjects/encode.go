package subjects

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidToken is returned by DecodeToken for text that EncodeToken cannot
// have produced.
var ErrInvalidToken = errors.New("subjects: invalid encoded token")

const hexDigits = "0123456789ABCDEF"

// safeByte reports whether b stands for itself in an encoded token.
func safeByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-'
}

// EncodeToken encodes s as one NATS token: bytes outside [A-Za-z0-9_-] become
// =XX. The empty string encodes to the empty string; callers validate names
// before encoding them, so that never reaches the wire.
func EncodeToken(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !safeByte(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safeByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}

// DecodeToken reverses EncodeToken. It accepts only the canonical form
// (upper-case hex, no escaped safe byte, no raw unsafe byte), so that
// DecodeToken followed by EncodeToken gives back the same token.
func DecodeToken(tok string) (string, error) {
	if strings.IndexByte(tok, '=') < 0 {
		for i := 0; i < len(tok); i++ {
			if !safeByte(tok[i]) {
				return "", fmt.Errorf("%w: %q: byte %q must be escaped", ErrInvalidToken, tok, tok[i])
			}
		}
		return tok, nil
	}
	out := make([]byte, 0, len(tok))
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c != '=' {
			if !safeByte(c) {
				return "", fmt.Errorf("%w: %q: byte %q must be escaped", ErrInvalidToken, tok, c)
			}
			out = append(out, c)
			continue
		}
		if i+2 >= len(tok) {
			return "", fmt.Errorf("%w: %q: truncated escape", ErrInvalidToken, tok)
		}
		hi, lo := unhex(tok[i+1]), unhex(tok[i+2])
		if hi < 0 || lo < 0 {
			return "", fmt.Errorf("%w: %q: bad escape %q", ErrInvalidToken, tok, tok[i:i+3])
		}
		v := byte(hi<<4 | lo)
		if safeByte(v) {
			return "", fmt.Errorf("%w: %q: %q needs no escape", ErrInvalidToken, tok, v)
		}
		out = append(out, v)
		i += 2
	}
	return string(out), nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
