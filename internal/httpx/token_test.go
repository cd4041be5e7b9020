package httpx

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRequireToken(t *testing.T) {
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := RequireToken(tok, "/v1/health")(ok)
	cases := []struct {
		path, auth string
		want       int
	}{
		{"/v1/health", "", http.StatusNoContent},
		{"/v1/claims", "", http.StatusUnauthorized},
		{"/v1/claims", "Bearer " + tok, http.StatusNoContent},
		{"/v1/claims", "Bearer " + tok + "x", http.StatusUnauthorized},
		{"/v1/claims", "bearer " + tok, http.StatusUnauthorized},
		{"/v1/claims", tok, http.StatusUnauthorized},
		{"/v1/health/../claims", "", http.StatusUnauthorized},
		{"/v1/health/", "", http.StatusUnauthorized},
		{"/V1/HEALTH", "", http.StatusUnauthorized},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "http://x"+tc.path, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s with %q: %d, want %d", tc.path, tc.auth, w.Code, tc.want)
		}
	}
	// An empty configured token opens nothing.
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "http://x/v1/claims", nil)
	r.Header.Set("Authorization", "Bearer ")
	RequireToken("")(ok).ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("empty token: %d", w.Code)
	}
}

func TestTokenFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "token")
	tok, _ := NewToken()
	if err := WriteTokenFile(f, tok); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(f)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, %v; want 0600", fi.Mode(), err)
	}
	if got, err := ReadTokenFile(f); err != nil || got != tok {
		t.Fatalf("ReadTokenFile: %q, %v", got, err)
	}
	if err := os.Chmod(f, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTokenFile(f); err == nil {
		t.Fatal("a world-readable token file was accepted")
	}
}

func TestLimitBody(t *testing.T) {
	h := LimitBody(16)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]string
		if err := Decode(r.Body, 16, &v); err != nil {
			code := http.StatusBadRequest
			var tooBig *http.MaxBytesError
			if errors.Is(err, ErrBodyTooLarge) || errors.As(err, &tooBig) {
				code = http.StatusRequestEntityTooLarge
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	for body, want := range map[string]int{
		`{"a":"b"}`: http.StatusNoContent,
		`{"a":"` + strings.Repeat("b", 100) + `"}`: http.StatusRequestEntityTooLarge,
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "http://x/", strings.NewReader(body)))
		if w.Code != want {
			b, _ := io.ReadAll(w.Body)
			t.Errorf("%d-byte body: %d %s, want %d", len(body), w.Code, b, want)
		}
	}
	// A body that lies about its length (chunked) is cut at the limit too.
	r := httptest.NewRequest("POST", "http://x/", io.MultiReader(strings.NewReader(`{"a":"`), strings.NewReader(strings.Repeat("b", 100)+`"}`)))
	r.ContentLength = -1
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversized body: %d", w.Code)
	}
}
