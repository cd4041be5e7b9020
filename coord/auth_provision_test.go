package coord

import (
	"errors"
	"testing"
	"time"

	"github.com/cogos-dev/coord/internal/authz"
	"github.com/cogos-dev/coord/testenv"
)

// An agent may not create coord's buckets: on a server nobody provisioned,
// New says so rather than just timing out.
func TestAuthUnprovisionedServer(t *testing.T) {
	u, err := authz.Agent("test", "alice", authz.Options{})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := authz.Render([]authz.User{u})
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.Start(t, testenv.WithAuthorization(t, conf))
	_, err = New(testCtx(t, 2*time.Second), WithURL(srv.URL()), WithAgent("alice"), WithNamespace("test"), WithUserPassword(u.Name, u.Password))
	if !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("New on an unprovisioned server: %v, want ErrPermissionDenied", err)
	}
}
