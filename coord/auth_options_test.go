package coord

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

func TestCredentialsOptions(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	bad := []Credentials{
		{User: "a"},
		{Password: "p"},
		{User: "a", Password: "p", Token: "t"},
		{CredsFile: file, User: "a", Password: "p"},
		{CredsFile: missing},
		{NKeyFile: file}, // not a seed
		{TLSCert: file},
		{TLSKey: file},
		{TLSCA: missing},
	}
	for _, cr := range bad {
		if _, err := cr.Options(); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%+v: %v, want ErrInvalidOption", cr, err)
		}
	}
	for _, cr := range []Credentials{{}, {User: "a", Password: "p"}, {Token: "t", TLSCA: file}, {CredsFile: file, TLSCert: file, TLSKey: file}} {
		if _, err := cr.NATSOptions(); err != nil {
			t.Errorf("%+v: %v", cr, err)
		}
	}
}

func TestCredentialsFlags(t *testing.T) {
	t.Setenv("NATS_USER", "from-env")
	t.Setenv("NATS_PASSWORD", "pw")
	var cr Credentials
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	cr.AddFlags(fs)
	if err := fs.Parse([]string{"--user", "alice", "--tlsca", "/ca.pem"}); err != nil {
		t.Fatal(err)
	}
	if cr.User != "alice" || cr.Password != "pw" || cr.TLSCA != "/ca.pem" {
		t.Fatalf("%+v", cr)
	}
}
