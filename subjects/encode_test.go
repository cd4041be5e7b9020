package subjects_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cogos-dev/coord/subjects"
)

// checkToken reports why tok cannot be a NATS token produced by EncodeToken:
// it must be non-empty and hold only [A-Za-z0-9_=-], so never '*', '>', '.',
// whitespace or a control byte.
func checkToken(tok string) error {
	if tok == "" {
		return errors.New("empty token")
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '=') {
			return fmt.Errorf("token %q holds byte %q at %d", tok, c, i)
		}
	}
	return nil
}

func TestEncodeToken(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"abc", "abc"},
		{"Agent-7_x", "Agent-7_x"},
		{"main.go", "main=2Ego"},
		{"*", "=2A"},
		{">", "=3E"},
		{".", "=2E"},
		{"=", "=3D"},
		{"==", "=3D=3D"},
		{" ", "=20"},
		{"a b", "a=20b"},
		{"\t\r\n", "=09=0D=0A"},
		{"/", "=2F"},
		{`\`, "=5C"},
		{"\x00", "=00"},
		{"\x7f", "=7F"},
		{"\xff", "=FF"},
		{"é", "=C3=A9"},
		{"日本", "=E6=97=A5=E6=9C=AC"},
		{"a.b*c>d", "a=2Eb=2Ac=3Ed"},
	}
	for _, tt := range tests {
		if got := subjects.EncodeToken(tt.in); got != tt.want {
			t.Errorf("EncodeToken(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPathTokens(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"src/main.go", "src.main=2Ego"},
		{"main.go", "main=2Ego"},
		{"README", "README"},
		{"a/b/c", "a.b.c"},
		{".git/config", "=2Egit.config"},
		{"a b/c*d/>", "a=20b.c=2Ad.=3E"},
		{"dir.v2/x", "dir=2Ev2.x"},
		{`a\b/c`, "a=5Cb.c"},
	}
	for _, tt := range tests {
		if got := subjects.PathTokens(tt.in); got != tt.want {
			t.Errorf("PathTokens(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecodeToken(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"abc", "abc"},
		{"Agent-7_x", "Agent-7_x"},
		{"main=2Ego", "main.go"},
		{"=2A", "*"},
		{"=3E", ">"},
		{"=3D=3D", "=="},
		{"a=20b", "a b"},
		{"=00", "\x00"},
		{"=FF", "\xff"},
		{"=C3=A9", "é"},
	}
	for _, tt := range tests {
		got, err := subjects.DecodeToken(tt.in)
		if err != nil {
			t.Errorf("DecodeToken(%q): unexpected error %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("DecodeToken(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTokenRoundTrip(t *testing.T) {
	var every strings.Builder
	for b := 0; b < 256; b++ {
		every.WriteByte(byte(b))
	}
	inputs := []string{
		"a", "src", "main.go", "*", ">", ".", "=", "==", "=2E", "a==b",
		"alice@example.com", "user/agent", `C:\x`, "tab\there", "nul\x00",
		"日本語", "\xff\xfe", "-_-", every.String(),
	}
	for b := 0; b < 256; b++ {
		inputs = append(inputs, string([]byte{byte(b)}))
	}
	for _, in := range inputs {
		tok := subjects.EncodeToken(in)
		if err := checkToken(tok); err != nil {
			t.Errorf("EncodeToken(%q) = %q: %v", in, tok, err)
		}
		got, err := subjects.DecodeToken(tok)
		if err != nil {
			t.Errorf("DecodeToken(EncodeToken(%q) = %q): %v", in, tok, err)
			continue
		}
		if got != in {
			t.Errorf("DecodeToken(EncodeToken(%q)) = %q, want the input back", in, got)
		}
	}
}

func TestDecodeTokenRejectsNonCanonical(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"lower-case hex", "main=2ego"},
		{"lower-case hex both digits", "=c3=a9"},
		{"escaped letter", "=41"},
		{"escaped lower letter", "=61"},
		{"escaped digit", "=30"},
		{"escaped underscore", "=5F"},
		{"escaped dash", "=2D"},
		{"raw dot", "main.go"},
		{"raw star", "*"},
		{"raw gt", ">"},
		{"raw space", "a b"},
		{"raw tab", "a\tb"},
		{"raw NUL", "\x00"},
		{"raw slash", "a/b"},
		{"raw utf-8", "é"},
		{"raw high byte", "\xff"},
		{"lone equals", "="},
		{"double equals", "=="},
		{"truncated escape one digit", "=2"},
		{"truncated escape at end", "abc="},
		{"truncated escape after escape", "=2E=2"},
		{"non-hex first digit", "=G0"},
		{"non-hex second digit", "=0G"},
		{"sign in escape", "=-1"},
		{"escaped equals then raw equals", "=3D="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := subjects.DecodeToken(tt.in)
			if !errors.Is(err, subjects.ErrInvalidToken) {
				t.Fatalf("DecodeToken(%q) = %q, %v; want error wrapping ErrInvalidToken", tt.in, got, err)
			}
			if got != "" {
				t.Errorf("DecodeToken(%q) returned %q with its error, want \"\"", tt.in, got)
			}
		})
	}
}
