package httpx

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// TokenHeader carries the API token: "Authorization: Bearer <token>".
const TokenHeader = "Authorization"

// NewToken returns 32 random bytes, base64url (256 bits).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("httpx: random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// WriteTokenFile writes token to path, readable by this user only (0600),
// replacing any older file atomically so no reader sees half a token.
func WriteTokenFile(path, token string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".token-*")
	if err != nil {
		return fmt.Errorf("httpx: token file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("httpx: token file: %w", err)
	}
	if _, err := tmp.WriteString(token + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("httpx: token file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("httpx: token file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("httpx: token file: %w", err)
	}
	return nil
}

// ReadTokenFile reads a token written by WriteTokenFile. It refuses a file
// that others may read.
func ReadTokenFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("httpx: token file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("httpx: token file %s has mode %v: others may read it (chmod 600)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("httpx: token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", errors.New("httpx: token file is empty")
	}
	return tok, nil
}

// RequireToken lets a request through only if it carries token as
// "Authorization: Bearer <token>" (compared in constant time). Requests for
// the paths in open (exact match, such as "/v1/health") need none. Others
// get 401 with a JSON body {"error": ..., "code": "unauthorized"}.
func RequireToken(token string, open ...string) func(http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if slices.Contains(open, r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			got := []byte(r.Header.Get(TokenHeader))
			if token == "" || subtle.ConstantTimeCompare(got, want) != 1 {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("WWW-Authenticate", `Bearer realm="coord"`)
				w.WriteHeader(http.StatusUnauthorized)
				_ = json.NewEncoder(w).Encode(map[string]string{
					"error": "missing or wrong API token (Authorization: Bearer <token>; see the token file)",
					"code":  "unauthorized",
				})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// LimitBody bounds every request body to limit bytes (DefaultMaxBody when
// limit <= 0); a handler reading past it gets an *http.MaxBytesError.
func LimitBody(limit int64) func(http.Handler) http.Handler {
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > limit {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				_ = json.NewEncoder(w).Encode(map[string]string{
					"error": fmt.Sprintf("request body over %d bytes", limit), "code": "invalid",
				})
				return
			}
			if r.Body != nil {
				r.Body = http.MaxBytesReader(w, r.Body, limit)
			}
			next.ServeHTTP(w, r)
		})
	}
}
