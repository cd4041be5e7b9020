package subjects

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what coord accepts as a name or a path. They keep keys, subjects
// and consumer names well inside what NATS allows.
const (
	// MaxPathBytes is the longest resource path accepted, after cleaning.
	MaxPathBytes = 1024
	// MaxPathSegments is the deepest resource path accepted.
	MaxPathSegments = 64
	// MaxNameBytes is the longest agent ID, channel or checkpoint name.
	MaxNameBytes = 128
	// MaxNamespaceBytes is the longest namespace.
	MaxNamespaceBytes = 64
)

// Validation errors. Each error returned by this package wraps one of them and
// says what was wrong with which input.
var (
	// ErrInvalidPath: a resource path that is empty, escapes the workspace root,
	// is absolute, holds a NUL or control byte, is not UTF-8 or is too long.
	ErrInvalidPath = errors.New("coord: invalid path")
	// ErrInvalidAgent: an agent ID that is empty, too long, not UTF-8, or holds
	// whitespace, control characters or invisible format characters
	// (Unicode category Cf).
	ErrInvalidAgent = errors.New("coord: invalid agent id")
	// ErrInvalidNamespace: a namespace that breaks the same rules.
	ErrInvalidNamespace = errors.New("coord: invalid namespace")
	// ErrInvalidChannel: a broadcast channel name that breaks the same rules.
	ErrInvalidChannel = errors.New("coord: invalid channel name")
	// ErrInvalidName: a checkpoint (or other) name that breaks the same rules.
	ErrInvalidName = errors.New("coord: invalid name")
)

// CleanPath validates a resource path relative to the workspace root and
// returns its canonical form: path.Clean'ed, forward slashes, no leading "./".
// Absolute paths are rejected here; coord resolves them against a workspace
// root before calling this.
func CleanPath(p string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("%w: empty", ErrInvalidPath)
	case !utf8.ValidString(p):
		return "", fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidPath, p)
	case len(p) > 4*MaxPathBytes:
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidPath, MaxPathBytes)
	}
	for _, r := range p {
		if r == 0 || unicode.IsControl(r) {
			return "", fmt.Errorf("%w: %q holds a control character", ErrInvalidPath, p)
		}
		if unicode.Is(unicode.Cf, r) {
			// An invisible format character (U+200B, U+202E, U+FEFF, ...)
			// would let two agents claim paths that look the same but are
			// different keys: neither would see the other's claim.
			return "", fmt.Errorf("%w: %q holds an invisible format character %U", ErrInvalidPath, p, r)
		}
	}
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: %q is absolute; give it relative to the workspace root", ErrInvalidPath, p)
	}
	c := path.Clean(p)
	switch {
	case c == ".":
		return "", fmt.Errorf("%w: %q names the workspace root itself", ErrInvalidPath, p)
	case c == ".." || strings.HasPrefix(c, "../"):
		return "", fmt.Errorf("%w: %q escapes the workspace root", ErrInvalidPath, p)
	case len(c) > MaxPathBytes:
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidPath, MaxPathBytes)
	case strings.Count(c, "/") >= MaxPathSegments:
		return "", fmt.Errorf("%w: deeper than %d segments", ErrInvalidPath, MaxPathSegments)
	}
	return c, nil
}

// ValidateAgent checks an agent ID.
func ValidateAgent(id string) error {
	return validateName(ErrInvalidAgent, "agent id", id, MaxNameBytes)
}

// ValidateChannel checks a broadcast channel name.
func ValidateChannel(name string) error {
	return validateName(ErrInvalidChannel, "channel", name, MaxNameBytes)
}

// ValidateName checks a checkpoint name (and any other free-form name).
func ValidateName(name string) error { return validateName(ErrInvalidName, "name", name, MaxNameBytes) }

// ValidateNamespace checks a namespace.
func ValidateNamespace(ns string) error {
	return validateName(ErrInvalidNamespace, "namespace", ns, MaxNamespaceBytes)
}

func validateName(sentinel error, what, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", sentinel, what)
	case len(s) > max:
		return fmt.Errorf("%w: %s longer than %d bytes", sentinel, what, max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s %q is not valid UTF-8", sentinel, what, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return fmt.Errorf("%w: %s %q holds whitespace or a control character", sentinel, what, s)
		}
		if unicode.Is(unicode.Cf, r) {
			// Invisible format characters (U+200B zero width space, U+202E
			// right-to-left override, U+FEFF, ...) would let two names that
			// differ look the same.
			return fmt.Errorf("%w: %s %q holds an invisible format character %U", sentinel, what, s, r)
		}
	}
	return nil
}
