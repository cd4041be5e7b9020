package sidecar

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/testenv"
)

// TestHolder: with the sidecar's Holder installed, the seed API's
// CreateClaim is held by the sidecar (it survives the caller's clients
// being closed), a competing agent gets a ClaimedError naming the owner,
// and ReleaseClaim releases it.
func TestHolder(t *testing.T) {
	srv := testenv.Start(t)
	s := start(t, Config{NATSURL: srv.URL()})
	root := filepath.Join(t.TempDir(), "holderws")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COG_NATS_URL", srv.URL())
	t.Setenv("COG_NAMESPACE", "")
	t.Setenv("COG_AGENT_ID", "alice")
	h, err := FindHolder(context.Background(), s.Info().DataDir)
	if err != nil {
		t.Fatal(err)
	}
	coord.SetClaimHolder(h)
	t.Cleanup(func() { coord.SetClaimHolder(nil); coord.CloseDefaultClients() })

	cl, err := coord.CreateClaim(root, root+"/src/a.go", "via sidecar")
	if err != nil {
		t.Fatal(err)
	}
	if cl.Agent != "alice" || cl.Path != "src/a.go" || cl.Namespace != "holderws" {
		t.Fatalf("claim: %+v", cl)
	}
	coord.CloseDefaultClients() // the caller's own clients hold nothing
	held := s.agents.held()
	if len(held) != 1 || held[0].Path != "src/a.go" || held[0].Agent != "alice" {
		t.Fatalf("sidecar holds %+v", held)
	}
	t.Setenv("COG_AGENT_ID", "bob")
	var ce *coord.ClaimedError
	if _, err := coord.CreateClaim(root, "src/a.go", ""); !errors.As(err, &ce) || ce.Owner != "alice" {
		t.Fatalf("bob's claim: %v", err)
	}
	if err := coord.ReleaseClaim(root, "src/a.go"); !errors.Is(err, coord.ErrNotOwner) {
		t.Fatalf("bob releasing alice's claim: %v", err)
	}
	t.Setenv("COG_AGENT_ID", "alice")
	if err := coord.ReleaseClaim(root, "src/a.go"); err != nil {
		t.Fatal(err)
	}
	if coord.IsClaimed(root, "src/a.go") {
		t.Error("still claimed after ReleaseClaim")
	}
}
