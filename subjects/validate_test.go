package subjects_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cogos-dev/coord/subjects"
)

func TestCleanPath(t *testing.T) {
	maxLen := strings.Repeat("a", subjects.MaxPathBytes)
	maxDepth := strings.TrimSuffix(strings.Repeat("a/", subjects.MaxPathSegments), "/")
	tests := []struct {
		in, want string
	}{
		{"src/a.go", "src/a.go"},
		{"./src/a.go", "src/a.go"},
		{"src//a.go", "src/a.go"},
		{"src/./a.go", "src/a.go"},
		{"src/x/../a.go", "src/a.go"},
		{"src/a.go/", "src/a.go"},
		{"a", "a"},
		{"a/..b", "a/..b"},
		{"...", "..."},
		{".git/config", ".git/config"},
		{"dir with space/f", "dir with space/f"},
		{`a\b`, `a\b`},
		{"*/>", "*/>"},
		{"é/日本.go", "é/日本.go"},
		{maxLen, maxLen},
		{maxDepth, maxDepth},
		// Over MaxPathBytes before cleaning, within it after.
		{strings.Repeat("./", subjects.MaxPathBytes) + "a", "a"},
	}
	for _, tt := range tests {
		got, err := subjects.CleanPath(tt.in)
		if err != nil {
			t.Errorf("CleanPath(%.40q): unexpected error %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("CleanPath(%.40q) = %.40q, want %.40q", tt.in, got, tt.want)
		}
	}
}

func TestCleanPathRejects(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"dot", "."},
		{"dot slash", "./"},
		{"dot dot", ".."},
		{"escapes", "../x"},
		{"escapes after clean", "a/../../x"},
		{"back to root", "a/.."},
		{"absolute", "/etc/passwd"},
		{"root", "/"},
		{"double slash absolute", "//x"},
		{"NUL byte", "a\x00b"},
		{"tab", "a\tb"},
		{"newline", "a\nb"},
		{"carriage return", "a\rb"},
		{"escape", "a\x1bb"},
		{"DEL", "a\x7f"},
		{"C1 control", "a\u0085b"},
		{"zero width space", "src/ma\u200bin.go"},
		{"right-to-left override", "src/\u202eog.niam"},
		{"byte order mark", "\ufeffsrc/main.go"},
		{"soft hyphen", "src/ma\u00adin.go"},
		{"invalid UTF-8", "a\xffb"},
		{"truncated UTF-8", "a\xc3"},
		{"over MaxPathBytes", strings.Repeat("a", subjects.MaxPathBytes+1)},
		{"over MaxPathBytes in two segments", strings.Repeat("a", 600) + "/" + strings.Repeat("b", 600)},
		{"far over MaxPathBytes", strings.Repeat("./", 4*subjects.MaxPathBytes) + "a"},
		{"over MaxPathSegments", strings.Repeat("a/", subjects.MaxPathSegments) + "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := subjects.CleanPath(tt.in)
			if !errors.Is(err, subjects.ErrInvalidPath) {
				t.Fatalf("CleanPath(%.40q) = %.40q, %v; want error wrapping ErrInvalidPath", tt.in, got, err)
			}
			if got != "" {
				t.Errorf("CleanPath(%.40q) returned %.40q with its error, want \"\"", tt.in, got)
			}
		})
	}
}

// validators lists the name validators with the sentinel each returns and
// its length limit.
var validators = []struct {
	name     string
	validate func(string) error
	sentinel error
	max      int
}{
	{"ValidateAgent", subjects.ValidateAgent, subjects.ErrInvalidAgent, subjects.MaxNameBytes},
	{"ValidateChannel", subjects.ValidateChannel, subjects.ErrInvalidChannel, subjects.MaxNameBytes},
	{"ValidateName", subjects.ValidateName, subjects.ErrInvalidName, subjects.MaxNameBytes},
	{"ValidateNamespace", subjects.ValidateNamespace, subjects.ErrInvalidNamespace, subjects.MaxNamespaceBytes},
}

var allSentinels = []error{
	subjects.ErrInvalidPath, subjects.ErrInvalidAgent, subjects.ErrInvalidNamespace,
	subjects.ErrInvalidChannel, subjects.ErrInvalidName, subjects.ErrInvalidToken,
}

func TestValidateNamesAccept(t *testing.T) {
	for _, v := range validators {
		valid := []string{
			"a", "alice", "Agent-7_x", "*", ">", ".", "a.b", "a/b", `a\b`, "a==b", "=",
			"alice@example.com", "é", "日本語", "Ωmega", "🙂",
			strings.Repeat("a", v.max),
			strings.Repeat("é", v.max/2),
		}
		for _, in := range valid {
			if err := v.validate(in); err != nil {
				t.Errorf("%s(%.40q) = %v, want nil", v.name, in, err)
			}
		}
	}
}

func TestValidateNamesReject(t *testing.T) {
	for _, v := range validators {
		tests := []struct {
			name, in string
		}{
			{"empty", ""},
			{"too long", strings.Repeat("a", v.max+1)},
			{"too long multibyte", strings.Repeat("é", v.max/2) + "a"},
			{"invalid UTF-8", "a\xffb"},
			{"truncated UTF-8", "a\xc3"},
			{"space", "a b"},
			{"leading space", " a"},
			{"trailing space", "a "},
			{"tab", "a\tb"},
			{"newline", "a\n"},
			{"carriage return", "a\rb"},
			{"form feed", "a\fb"},
			{"vertical tab", "a\vb"},
			{"no-break space", "a\u00a0b"},
			{"ideographic space", "a\u3000b"},
			{"line separator", "a\u2028b"},
			{"NUL", "a\x00b"},
			{"escape", "\x1b"},
			{"DEL", "a\x7f"},
			{"C1 control", "a\u0085b"},
		}
		for _, tt := range tests {
			t.Run(v.name+"/"+tt.name, func(t *testing.T) {
				err := v.validate(tt.in)
				if !errors.Is(err, v.sentinel) {
					t.Fatalf("%s(%.40q) = %v, want error wrapping %v", v.name, tt.in, err, v.sentinel)
				}
				for _, other := range allSentinels {
					if other != v.sentinel && errors.Is(err, other) {
						t.Errorf("%s(%.40q) = %v, also wraps %v", v.name, tt.in, err, other)
					}
				}
			})
		}
	}
}
