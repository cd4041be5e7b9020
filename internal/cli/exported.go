package cli

import (
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// FirstEnv is the first non-empty environment variable of names.
func FirstEnv(names ...string) string { return firstEnv(names...) }

// NamespaceFor maps a workspace root to its namespace.
func NamespaceFor(workspace string) (string, error) { return namespaceFor(workspace) }

// Logger is a zerolog logger on w: a human console writer when w is a
// terminal, JSON lines otherwise.
func Logger(w io.Writer) zerolog.Logger {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			w = zerolog.ConsoleWriter{Out: f, TimeFormat: time.TimeOnly}
		}
	}
	return zerolog.New(w).With().Timestamp().Logger()
}
