package subjects_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cogos-dev/coord/subjects"
)

// FuzzToken checks that EncodeToken gives a valid, non-empty token that
// DecodeToken reverses, and that DecodeToken accepts only canonical tokens:
// whatever it decodes encodes back to the same text.
func FuzzToken(f *testing.F) {
	for _, s := range []string{"", "a", "main.go", "*", ">", "=", "=2E", "=2e", "=41", "a b", "\x00", "\xff", "é", "=C3=A9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := subjects.EncodeToken(s)
		if s != "" {
			if err := checkToken(tok); err != nil {
				t.Fatalf("EncodeToken(%q) = %q: %v", s, tok, err)
			}
		} else if tok != "" {
			t.Fatalf("EncodeToken(\"\") = %q, want \"\"", tok)
		}
		got, err := subjects.DecodeToken(tok)
		if err != nil {
			t.Fatalf("DecodeToken(EncodeToken(%q) = %q): %v", s, tok, err)
		}
		if got != s {
			t.Fatalf("DecodeToken(EncodeToken(%q)) = %q", s, got)
		}

		// s as a token: if it decodes, it is canonical.
		dec, err := subjects.DecodeToken(s)
		if err != nil {
			if !errors.Is(err, subjects.ErrInvalidToken) {
				t.Fatalf("DecodeToken(%q): error %v does not wrap ErrInvalidToken", s, err)
			}
			return
		}
		if enc := subjects.EncodeToken(dec); enc != s {
			t.Fatalf("DecodeToken(%q) = %q, which encodes to %q", s, dec, enc)
		}
	})
}

// FuzzCleanPath checks that a path CleanPath accepts is canonical and
// bounded, and that its claim key is made of valid tokens and parses back.
func FuzzCleanPath(f *testing.F) {
	for _, p := range []string{"src/a.go", "./src//a.go", "src/x/../a.go", "../x", "a/../../x", "/etc/passwd", ".", "a\x00b", "a b/*/>", ".git/HEAD", "a..b", "é/\xff"} {
		f.Add(p)
	}
	namespaces := []string{"ws", "my.ws*"}
	f.Fuzz(func(t *testing.T, p string) {
		clean, err := subjects.CleanPath(p)
		if err != nil {
			if !errors.Is(err, subjects.ErrInvalidPath) {
				t.Fatalf("CleanPath(%q): error %v does not wrap ErrInvalidPath", p, err)
			}
			return
		}
		if again, err := subjects.CleanPath(clean); err != nil || again != clean {
			t.Fatalf("CleanPath(%q) = %q, but CleanPath(%q) = %q, %v", p, clean, clean, again, err)
		}
		if strings.HasPrefix(clean, "/") || strings.HasSuffix(clean, "/") {
			t.Fatalf("CleanPath(%q) = %q has a leading or trailing '/'", p, clean)
		}
		if !utf8.ValidString(clean) || len(clean) > subjects.MaxPathBytes {
			t.Fatalf("CleanPath(%q) = %q: invalid UTF-8 or over %d bytes", p, clean, subjects.MaxPathBytes)
		}
		segs := strings.Split(clean, "/")
		if len(segs) > subjects.MaxPathSegments {
			t.Fatalf("CleanPath(%q) = %q has %d segments, over %d", p, clean, len(segs), subjects.MaxPathSegments)
		}
		for _, s := range segs {
			if s == "" || s == "." || s == ".." {
				t.Fatalf("CleanPath(%q) = %q holds segment %q", p, clean, s)
			}
		}
		for _, ns := range namespaces {
			key, kclean, err := subjects.ClaimKey(ns, p)
			if err != nil || kclean != clean {
				t.Fatalf("ClaimKey(%q, %q) = %q, %q, %v; want clean path %q", ns, p, key, kclean, err, clean)
			}
			if err := checkSubject(key, 1+len(segs)); err != nil {
				t.Fatalf("ClaimKey(%q, %q): %v", ns, p, err)
			}
			gotNS, gotPath, err := subjects.ParseClaimKey(key)
			if err != nil || gotNS != ns || gotPath != clean {
				t.Fatalf("ParseClaimKey(%q) = %q, %q, %v; want %q, %q", key, gotNS, gotPath, err, ns, clean)
			}
		}
	})
}

// FuzzParseClaimKey checks that ParseClaimKey accepts exactly the keys
// ClaimKey produces: a key that parses is the claim key of what it parses to.
func FuzzParseClaimKey(f *testing.F) {
	for _, k := range []string{"ws.src.main=2Ego", "ws.src=2Fmain=2Ego", "ws.=2E=2E.etc", ".a", "ws", "ws..a", "ws.a=2e", "a=20b.x"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		ns, p, err := subjects.ParseClaimKey(key)
		if err != nil {
			if !errors.Is(err, subjects.ErrInvalidPath) && !errors.Is(err, subjects.ErrInvalidToken) && !errors.Is(err, subjects.ErrInvalidNamespace) {
				t.Fatalf("ParseClaimKey(%q): error %v wraps no sentinel", key, err)
			}
			return
		}
		canon, clean, err := subjects.ClaimKey(ns, p)
		if err != nil || canon != key || clean != p {
			t.Fatalf("ParseClaimKey(%q) = %q, %q, but ClaimKey gives %q, %q, %v", key, ns, p, canon, clean, err)
		}
	})
}

// FuzzName checks that a name each validator accepts encodes to a token NATS
// takes as one literal token, and that HandoffConsumer turns it into a valid,
// injective consumer name.
func FuzzName(f *testing.F) {
	for _, s := range []string{"alice", "*", ">", "a.b", "a==b", "a b", "", "é", "\xff", "a\x00", "a\u00a0b", strings.Repeat("*", subjects.MaxNameBytes)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, v := range validators {
			if err := v.validate(s); err != nil {
				if !errors.Is(err, v.sentinel) {
					t.Fatalf("%s(%q): error %v does not wrap %v", v.name, s, err, v.sentinel)
				}
				continue
			}
			if len(s) > v.max || strings.ContainsAny(s, " \t\r\n\f\v\x00") {
				t.Fatalf("%s accepted %q", v.name, s)
			}
			tok := subjects.EncodeToken(s)
			if err := checkToken(tok); err != nil {
				t.Fatalf("%s accepted %q, which encodes to %q: %v", v.name, s, tok, err)
			}
		}

		if subjects.ValidateAgent(s) != nil {
			return
		}
		nss := []string{"ws"}
		if subjects.ValidateNamespace(s) == nil {
			nss = append(nss, s)
		}
		for _, ns := range nss {
			name, err := subjects.HandoffConsumer(ns, s)
			if err != nil {
				t.Fatalf("HandoffConsumer(%q, %q): %v", ns, s, err)
			}
			if err := checkConsumerName(name); err != nil {
				t.Fatalf("HandoffConsumer(%q, %q): %v", ns, s, err)
			}
			// Moving the agent's first rune into the namespace changes the name.
			if _, size := utf8.DecodeRuneInString(s); size < len(s) {
				ns2, agent2 := ns+s[:size], s[size:]
				if other, err := subjects.HandoffConsumer(ns2, agent2); err == nil && other == name {
					t.Fatalf("HandoffConsumer(%q, %q) = HandoffConsumer(%q, %q) = %q", ns, s, ns2, agent2, name)
				}
			}
			if other, err := subjects.HandoffConsumer(ns, s+"_"); err == nil && other == name {
				t.Fatalf("HandoffConsumer(%q, %q) = HandoffConsumer(%q, %q) = %q", ns, s, ns, s+"_", name)
			}
		}
		subj, err := subjects.HandoffSubject("ws", s)
		if err != nil {
			t.Fatalf("HandoffSubject(ws, %q): %v", s, err)
		}
		if err := checkSubject(subj, 4); err != nil {
			t.Fatalf("HandoffSubject(ws, %q): %v", s, err)
		}
	})
}
