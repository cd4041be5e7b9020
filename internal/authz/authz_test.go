package authz

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cogos-dev/coord/subjects"
)

// parse loads conf the way nats-server loads a config file.
func parse(t *testing.T, conf string) *server.Options {
	t.Helper()
	f := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := server.ProcessConfigFile(f)
	if err != nil {
		t.Fatalf("nats-server rejects the rendered block: %v\n%s", err, conf)
	}
	return o
}

func TestRenderLoadsAsGenerated(t *testing.T) {
	// Names with characters a config file must quote or escape.
	agents := []string{"alice", `we"ird\name`, "a.b", "*", ">", "日本"}
	var users []User
	for _, a := range agents {
		u, err := Agent("ns-1", a, Options{})
		if err != nil {
			t.Fatalf("Agent(%q): %v", a, err)
		}
		users = append(users, u)
	}
	nk, err := AgentNKey("ns-1", "robot", Options{Channels: []string{"ops"}})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := Admin("admin")
	if err != nil {
		t.Fatal(err)
	}
	users = append(users, nk, admin)
	conf, err := Render(users)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(conf, nk.Seed) {
		t.Fatal("rendered block holds an nkey seed")
	}
	o := parse(t, conf)
	if len(o.Users) != len(agents)+1 || len(o.Nkeys) != 1 {
		t.Fatalf("loaded %d users and %d nkeys, want %d and 1", len(o.Users), len(o.Nkeys), len(agents)+1)
	}
	for i, a := range agents {
		got := o.Users[i]
		if got.Username != a || got.Password != users[i].Password {
			t.Errorf("user %d: %q/%q, want %q/%q", i, got.Username, got.Password, a, users[i].Password)
		}
		if !reflect.DeepEqual(got.Permissions, users[i].Permissions) {
			t.Errorf("user %q: loaded permissions differ from generated:\n got %+v\nwant %+v", a, got.Permissions.Publish, users[i].Permissions.Publish)
		}
	}
	if o.Nkeys[0].Nkey != nk.NKey || !reflect.DeepEqual(o.Nkeys[0].Permissions, nk.Permissions) {
		t.Errorf("nkey user: %+v", o.Nkeys[0])
	}
	if last := o.Users[len(agents)]; last.Username != "admin" || last.Permissions != nil {
		t.Errorf("admin: %+v, want no restrictions", last)
	}
}

func TestPermissionsScope(t *testing.T) {
	p, err := Permissions("ns", "bob", Options{Channels: []string{"ops", "a.b"}})
	if err != nil {
		t.Fatal(err)
	}
	pub := p.Publish.Allow
	bobList, _ := subjects.HandoffListConsumer("ns", "bob", false, 0)
	for _, want := range []string{
		"coord.handoff.ns.*.*",           // send to anyone
		"coord.handoff-done.ns.bob.*",    // decide his own
		"$KV.coord-checkpoints.ns.*.bob", // his own arrivals
		"coord.bcast.ns.ops",             // allowed channels
		"coord.bcast.ns.a=2Eb",           // encoded
		"$JS.API.CONSUMER.CREATE.COORD_HANDOFFS." + bobList + ".coord.handoff.ns.bob.*",
		"$JS.API.DIRECT.GET.COORD_HANDOFFS.coord.handoff.ns.bob.*",
	} {
		if !slices.Contains(pub, want) {
			t.Errorf("bob may not publish %s", want)
		}
	}
	for _, s := range pub {
		switch {
		case strings.HasPrefix(s, "$JS.API.STREAM.CREATE"), strings.HasPrefix(s, "$JS.API.STREAM.UPDATE"),
			strings.HasPrefix(s, "$JS.API.STREAM.DELETE"), strings.HasPrefix(s, "$JS.API.STREAM.PURGE"),
			strings.HasPrefix(s, "$JS.API.STREAM.MSG.DELETE"), s == ">", s == "$JS.API.>", s == "coord.>",
			s == "coord.bcast.ns.*",
			strings.Contains(s, "COORD_HANDOFFS") && strings.HasSuffix(s, ".>"),
			s == "$JS.API.DIRECT.GET.COORD_HANDOFFS", s == "$JS.API.STREAM.MSG.GET.COORD_HANDOFFS":
			t.Errorf("bob may publish %s", s)
		}
	}
	if got := p.Subscribe.Allow; !slices.Equal(got, []string{"_INBOX_.ns.bob.>"}) {
		t.Errorf("subscribe %v, want only his inbox", got)
	}
	reset, _ := Permissions("ns", "bob", Options{ResetCheckpoints: true})
	if !slices.Contains(reset.Publish.Allow, "$KV.coord-checkpoints.ns.>") {
		t.Error("ResetCheckpoints does not allow writing every arrival")
	}
}

func TestPermissionsRejectBadInput(t *testing.T) {
	for _, tc := range []struct{ ns, agent, channel string }{
		{"", "bob", ""}, {"ns", "", ""}, {"ns", "b ob", ""}, {"ns", "bob\u200b", ""},
		{"ns", "bob", "bad channel"}, {"ns", strings.Repeat("x", 200), ""},
	} {
		o := Options{}
		if tc.channel != "" {
			o.Channels = []string{tc.channel}
		}
		if _, err := Permissions(tc.ns, tc.agent, o); !errors.Is(err, ErrInvalid) {
			t.Errorf("Permissions(%q, %q, %q): %v, want ErrInvalid", tc.ns, tc.agent, tc.channel, err)
		}
	}
	for _, u := range []User{{Name: "x"}, {Password: "y"}, {NKey: "not-a-key"}, {NKey: "UABC", Name: "x"}} {
		if _, err := Render([]User{u}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Render(%+v): %v, want ErrInvalid", u, err)
		}
	}
}
