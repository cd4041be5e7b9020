package embedded_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/cogos-dev/coord/coord/embedded"
	"github.com/cogos-dev/coord/internal/authz"
	"github.com/cogos-dev/coord/testenv"
)

// AuthFile loads users and a TLS block from a nats.conf fragment: the
// embedded server then refuses clients without credentials or TLS.
func TestAuthFile(t *testing.T) {
	ca := testenv.NewCA(t)
	certFile, keyFile := ca.Issue(t, "server", true)
	u, err := authz.Agent("ws", "alice", authz.Options{})
	if err != nil {
		t.Fatal(err)
	}
	block, err := authz.Render([]authz.User{u})
	if err != nil {
		t.Fatal(err)
	}
	conf := block + fmt.Sprintf("tls {\n  cert_file: %q\n  key_file: %q\n  ca_file: %q\n}\n", certFile, keyFile, ca.CAFile)
	f := filepath.Join(t.TempDir(), "auth.conf")
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := embedded.Options(embedded.Config{StoreDir: t.TempDir(), Port: -1, AuthFile: f})
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Users) != 1 || opts.TLSConfig == nil {
		t.Fatalf("loaded %d users, TLS %v", len(opts.Users), opts.TLSConfig != nil)
	}
	srv, err := embedded.Start(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	url := srv.ClientURL()
	if nc, err := nats.Connect(url, nats.RootCAs(ca.CAFile), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("connected without credentials")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("without credentials: %v, want nats.ErrAuthorization", err)
	}
	if nc, err := nats.Connect(url, nats.UserInfo(u.Name, u.Password), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("connected without TLS")
	}
	nc, err := nats.Connect(url, nats.UserInfo(u.Name, u.Password), nats.RootCAs(ca.CAFile))
	if err != nil {
		t.Fatalf("with credentials over TLS: %v", err)
	}
	nc.Close()

	if _, err := embedded.Options(embedded.Config{StoreDir: t.TempDir(), AuthFile: filepath.Join(t.TempDir(), "missing.conf")}); err == nil {
		t.Fatal("a missing auth file was accepted")
	}
}
