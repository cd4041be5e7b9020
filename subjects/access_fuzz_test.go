package subjects_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/cogos-dev/coord/subjects"
)

// FuzzAccessNames checks the names permissions are written against: for
// any namespace and agent coord accepts, the inbox prefix is three literal
// tokens, every listing consumer name is valid and distinct, and the agent
// holds no invisible format character (so two agents cannot look alike).
func FuzzAccessNames(f *testing.F) {
	for _, s := range [][2]string{{"ws", "alice"}, {"ws", "al\u200bice"}, {"ws", "\u202Eecila"}, {"w.s", "*"},
		{"ws", "\ufeffbob"}, {"ws", strings.Repeat("x", subjects.MaxNameBytes)}, {"ws", "a\u00adb"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, ns, agent string) {
		p, err := subjects.InboxPrefix(ns, agent)
		if err != nil {
			if !errors.Is(err, subjects.ErrInvalidAgent) && !errors.Is(err, subjects.ErrInvalidNamespace) {
				t.Fatalf("InboxPrefix(%q, %q): %v wraps no sentinel", ns, agent, err)
			}
			return
		}
		for _, r := range agent + ns {
			if unicode.Is(unicode.Cf, r) || unicode.IsControl(r) || unicode.IsSpace(r) {
				t.Fatalf("accepted %q / %q holding %U", ns, agent, r)
			}
		}
		if err := checkSubject(p, 3); err != nil {
			t.Fatalf("InboxPrefix(%q, %q) = %q: %v", ns, agent, p, err)
		}
		seen := map[string]bool{}
		for _, archive := range []bool{false, true} {
			for slot := range subjects.HandoffListSlots {
				name, err := subjects.HandoffListConsumer(ns, agent, archive, slot)
				if err != nil {
					t.Fatalf("HandoffListConsumer(%q, %q): %v", ns, agent, err)
				}
				if err := checkConsumerName(name); err != nil {
					t.Fatalf("HandoffListConsumer(%q, %q) = %q: %v", ns, agent, name, err)
				}
				if seen[name] {
					t.Fatalf("HandoffListConsumer(%q, %q) repeats %q", ns, agent, name)
				}
				seen[name] = true
			}
		}
		if _, err := subjects.HandoffListConsumer(ns, agent, false, subjects.HandoffListSlots); err == nil {
			t.Fatal("slot out of range accepted")
		}
	})
}
