package subjects_test

import (
	"errors"
	"testing"

	"github.com/cogos-dev/coord/subjects"
)

// Names that would look like another name are refused, each with the
// sentinel of what they name.
func TestNamesRejectInvisibleFormatCharacters(t *testing.T) {
	for _, s := range []string{"al\u200bice", "\u202eecila", "bob\ufeff", "a\u00adb", "a\u2060b", "a\u200db"} {
		if err := subjects.ValidateAgent(s); !errors.Is(err, subjects.ErrInvalidAgent) {
			t.Errorf("ValidateAgent(%q): %v, want ErrInvalidAgent", s, err)
		}
		if err := subjects.ValidateChannel(s); !errors.Is(err, subjects.ErrInvalidChannel) {
			t.Errorf("ValidateChannel(%q): %v, want ErrInvalidChannel", s, err)
		}
		if err := subjects.ValidateNamespace(s); !errors.Is(err, subjects.ErrInvalidNamespace) {
			t.Errorf("ValidateNamespace(%q): %v, want ErrInvalidNamespace", s, err)
		}
		if err := subjects.ValidateName(s); !errors.Is(err, subjects.ErrInvalidName) {
			t.Errorf("ValidateName(%q): %v, want ErrInvalidName", s, err)
		}
	}
	for _, s := range []string{"alice", "é", "日本", "a-b_c.d"} {
		if err := subjects.ValidateAgent(s); err != nil {
			t.Errorf("ValidateAgent(%q): %v", s, err)
		}
	}
}

func TestInboxPrefix(t *testing.T) {
	got, err := subjects.InboxPrefix("my*ws", "a.b")
	if err != nil || got != "_INBOX_.my=2Aws.a=2Eb" {
		t.Fatalf("InboxPrefix = %q, %v", got, err)
	}
	if _, err := subjects.InboxPrefix("ws", ""); !errors.Is(err, subjects.ErrInvalidAgent) {
		t.Fatalf("empty agent: %v", err)
	}
}
