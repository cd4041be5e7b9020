package authz

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

func TestRunPrintsLoadableBlock(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := Run([]string{"--namespace", "ws", "--admin", "root", "alice", "bob"}, &out, &errOut); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	o := parse(t, out.String())
	if len(o.Users) != 3 || o.Users[0].Permissions != nil {
		t.Fatalf("users: %+v", o.Users)
	}
	want, _ := Permissions("ws", "bob", Options{})
	if got := o.Users[2]; got.Username != "bob" || !equalPerms(got.Permissions, want) {
		t.Fatalf("bob: %+v", got)
	}
}

func TestRunOutDirKeepsSecretsOut(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if err := Run([]string{"--out-dir", dir, "alice"}, &out, &errOut); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	pw, err := os.ReadFile(filepath.Join(dir, "alice.password"))
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "alice.password"))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v", fi.Mode())
	}
	secret := strings.TrimSpace(string(pw))
	if strings.Contains(out.String(), secret) {
		t.Fatal("the block holds the plain password")
	}
	o := parse(t, out.String())
	if bcrypt.CompareHashAndPassword([]byte(o.Users[0].Password), []byte(secret)) != nil {
		t.Fatal("the block's hash does not match the secret file")
	}

	out.Reset()
	if err := Run([]string{"--out-dir", dir, "--nkeys", "bob"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile(filepath.Join(dir, "bob.nk"))
	if err != nil || !strings.HasPrefix(string(seed), "SU") || strings.Contains(out.String(), strings.TrimSpace(string(seed))) {
		t.Fatalf("nkey seed file %q, %v; block:\n%s", seed, err, out.String())
	}
	if o := parse(t, out.String()); len(o.Nkeys) != 1 {
		t.Fatalf("nkeys: %+v", o.Nkeys)
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	for _, args := range [][]string{{}, {"bad agent"}, {"--namespace", "", "a"}, {"--channels", "a b", "a"}, {"al\u200bice"}} {
		var out, errOut bytes.Buffer
		if err := Run(args, &out, &errOut); err == nil {
			t.Errorf("Run(%q) succeeded:\n%s", args, out.String())
		}
		if out.Len() != 0 {
			t.Errorf("Run(%q) printed a block despite the error", args)
		}
	}
}

func equalPerms(a, b *server.Permissions) bool {
	return strings.Join(a.Publish.Allow, ",") == strings.Join(b.Publish.Allow, ",") &&
		strings.Join(a.Subscribe.Allow, ",") == strings.Join(b.Subscribe.Allow, ",")
}

func TestRunUnionForASidecar(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := Run([]string{"--namespace", "ws", "--union", "node1", "alice", "bob"}, &out, &errOut); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	o := parse(t, out.String())
	if len(o.Users) != 1 || o.Users[0].Username != "node1" {
		t.Fatalf("users: %+v", o.Users)
	}
	p := o.Users[0].Permissions
	for _, want := range []string{"coord.handoff-done.ws.alice.*", "coord.handoff-done.ws.bob.*", "coord.handoff-done.ws.node1.*"} {
		if !slices.Contains(p.Publish.Allow, want) {
			t.Errorf("union lacks %s", want)
		}
	}
	if !slices.Contains(p.Subscribe.Allow, "_INBOX_.ws.node1.>") {
		t.Errorf("union lacks the sidecar's own inbox: %v", p.Subscribe.Allow)
	}
	if Union(p, nil) != nil {
		t.Error("a union with an unrestricted set is restricted")
	}
}
