package subjects_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/cogos-dev/coord/subjects"
)

// subjectMatches reports whether a NATS subject or KV key matches filter,
// with NATS wildcard rules: '*' matches one token, a final '>' one or more.
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, ft := range f {
		if ft == ">" {
			return len(s) > i
		}
		if i >= len(s) || ft != "*" && ft != s[i] {
			return false
		}
	}
	return len(f) == len(s)
}

// checkSubject reports why s is not a literal subject or key of n encoded
// tokens.
func checkSubject(s string, n int) error {
	toks := strings.Split(s, ".")
	if len(toks) != n {
		return fmt.Errorf("%q has %d tokens, want %d", s, len(toks), n)
	}
	for _, tok := range toks {
		if err := checkToken(tok); err != nil {
			return fmt.Errorf("%q: %v", s, err)
		}
	}
	return nil
}

// checkConsumerName reports why name is not a durable consumer name the
// server accepts.
func checkConsumerName(name string) error {
	if name == "" {
		return errors.New("empty consumer name")
	}
	if len(name) > 255 {
		return fmt.Errorf("consumer name %.40q... is %d bytes, over 255", name, len(name))
	}
	if i := strings.IndexAny(name, " \t\r\n\f\v.*>/\\\x00"); i >= 0 {
		return fmt.Errorf("consumer name %q holds %q", name, name[i])
	}
	return checkToken(name)
}

func TestClaimKey(t *testing.T) {
	tests := []struct {
		ns, path       string
		wantKey, clean string
	}{
		{"ws", "src/main.go", "ws.src.main=2Ego", "src/main.go"},
		{"ws", "./src//main.go", "ws.src.main=2Ego", "src/main.go"},
		{"ws", "src/x/../main.go", "ws.src.main=2Ego", "src/main.go"},
		{"my.ws", "README", "my=2Ews.README", "README"},
		{"ws", "a b/*.go", "ws.a=20b.=2A=2Ego", "a b/*.go"},
		{"ws", ".github/>", "ws.=2Egithub.=3E", ".github/>"},
		{"*", "x", "=2A.x", "x"},
	}
	for _, tt := range tests {
		key, clean, err := subjects.ClaimKey(tt.ns, tt.path)
		if err != nil {
			t.Errorf("ClaimKey(%q, %q): unexpected error %v", tt.ns, tt.path, err)
			continue
		}
		if key != tt.wantKey || clean != tt.clean {
			t.Errorf("ClaimKey(%q, %q) = %q, %q; want %q, %q", tt.ns, tt.path, key, clean, tt.wantKey, tt.clean)
		}
	}
}

func TestClaimKeyErrors(t *testing.T) {
	tests := []struct {
		ns, path string
		want     error
	}{
		{"", "a", subjects.ErrInvalidNamespace},
		{"a b", "a", subjects.ErrInvalidNamespace},
		{strings.Repeat("n", subjects.MaxNamespaceBytes+1), "a", subjects.ErrInvalidNamespace},
		{"ws", "", subjects.ErrInvalidPath},
		{"ws", "../x", subjects.ErrInvalidPath},
		{"ws", "/etc/passwd", subjects.ErrInvalidPath},
		{"ws", ".", subjects.ErrInvalidPath},
		{"ws", "a\x00", subjects.ErrInvalidPath},
	}
	for _, tt := range tests {
		key, clean, err := subjects.ClaimKey(tt.ns, tt.path)
		if !errors.Is(err, tt.want) {
			t.Errorf("ClaimKey(%.40q, %q) = %q, %q, %v; want error wrapping %v", tt.ns, tt.path, key, clean, err, tt.want)
		}
	}
}

func TestClaimKeyRoundTrip(t *testing.T) {
	namespaces := []string{"ws", "my.ws", "*", ">", "a==b", "日本", strings.Repeat("é", subjects.MaxNamespaceBytes/2)}
	paths := []string{
		"a", "src/main.go", "./x/y/z", ".git/HEAD", "a..b/c", "...", "a b/c\\d", "*/>/.", "=2E/=",
		strings.TrimSuffix(strings.Repeat("seg/", subjects.MaxPathSegments), "/"),
	}
	for _, ns := range namespaces {
		filter, err := subjects.ClaimFilter(ns)
		if err != nil {
			t.Fatalf("ClaimFilter(%q): %v", ns, err)
		}
		for _, p := range paths {
			key, clean, err := subjects.ClaimKey(ns, p)
			if err != nil {
				t.Errorf("ClaimKey(%q, %q): %v", ns, p, err)
				continue
			}
			if err := checkSubject(key, 1+strings.Count(clean, "/")+1); err != nil {
				t.Errorf("ClaimKey(%q, %q): %v", ns, p, err)
			}
			if !subjectMatches(filter, key) {
				t.Errorf("ClaimFilter(%q) = %q does not match ClaimKey(%q, %q) = %q", ns, filter, ns, p, key)
			}
			gotNS, gotPath, err := subjects.ParseClaimKey(key)
			if err != nil {
				t.Errorf("ParseClaimKey(%q): %v", key, err)
				continue
			}
			if gotNS != ns || gotPath != clean {
				t.Errorf("ParseClaimKey(%q) = %q, %q; want %q, %q", key, gotNS, gotPath, ns, clean)
			}
		}
	}
}

func TestClaimKeyDirectoryFilter(t *testing.T) {
	// The hierarchy survives encoding: "<ns>.src.>" selects src/ and below,
	// and nothing else.
	inside := []string{"src/a.go", "src/x/y.go"}
	outside := []string{"src", "srcx/a.go", "other/src/a.go", "src.go"}
	for _, p := range inside {
		key, _, err := subjects.ClaimKey("ws", p)
		if err != nil {
			t.Fatalf("ClaimKey(ws, %q): %v", p, err)
		}
		if !subjectMatches("ws.src.>", key) {
			t.Errorf("ws.src.> does not match %q (path %q)", key, p)
		}
	}
	for _, p := range outside {
		key, _, err := subjects.ClaimKey("ws", p)
		if err != nil {
			t.Fatalf("ClaimKey(ws, %q): %v", p, err)
		}
		if subjectMatches("ws.src.>", key) {
			t.Errorf("ws.src.> matches %q (path %q)", key, p)
		}
	}
}

func TestParseClaimKeyRejects(t *testing.T) {
	tests := []struct {
		key  string
		want error
	}{
		{"", subjects.ErrInvalidPath},
		{"ws", subjects.ErrInvalidPath},
		{"ws.", subjects.ErrInvalidToken},
		{"ws..a", subjects.ErrInvalidToken},
		{"ws.a.", subjects.ErrInvalidToken},
		{"ws.a=2ego", subjects.ErrInvalidToken},
		{"ws.a*", subjects.ErrInvalidToken},
		{"ws.>", subjects.ErrInvalidToken},
		{"w s.a", subjects.ErrInvalidToken},
		{"ws.=41", subjects.ErrInvalidToken},
		{"ws.a=", subjects.ErrInvalidToken},
		// Keys of canonical tokens that ClaimKey still cannot produce.
		{".a", subjects.ErrInvalidNamespace},
		{"a=20b.x", subjects.ErrInvalidNamespace},
		{"ws.=2E=2E", subjects.ErrInvalidPath},
		{"ws.=2E=2E.etc", subjects.ErrInvalidPath},
		{"ws.=2E", subjects.ErrInvalidPath},
		{"ws.a.=2E=2E.b", subjects.ErrInvalidPath},
		{"ws.src=2Fmain=2Ego", subjects.ErrInvalidPath},
		{"ws.=2Fetc", subjects.ErrInvalidPath},
		{"ws.a=00", subjects.ErrInvalidPath},
	}
	for _, tt := range tests {
		ns, p, err := subjects.ParseClaimKey(tt.key)
		if !errors.Is(err, tt.want) {
			t.Errorf("ParseClaimKey(%q) = %q, %q, %v; want error wrapping %v", tt.key, ns, p, err, tt.want)
		}
	}
}

func TestClaimFilter(t *testing.T) {
	tests := []struct{ ns, want string }{
		{"ws", "ws.>"},
		{"my.ws", "my=2Ews.>"},
		{">", "=3E.>"},
	}
	for _, tt := range tests {
		got, err := subjects.ClaimFilter(tt.ns)
		if err != nil || got != tt.want {
			t.Errorf("ClaimFilter(%q) = %q, %v; want %q, nil", tt.ns, got, err, tt.want)
		}
	}
	for _, ns := range []string{"", "a b", "a\x00"} {
		if got, err := subjects.ClaimFilter(ns); !errors.Is(err, subjects.ErrInvalidNamespace) {
			t.Errorf("ClaimFilter(%q) = %q, %v; want error wrapping ErrInvalidNamespace", ns, got, err)
		}
	}
	// A namespace's filter never selects another namespace's keys, even one
	// whose name extends it.
	other, _, err := subjects.ClaimKey("ws2", "a")
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := subjects.ClaimFilter("ws"); subjectMatches(f, other) {
		t.Errorf("ClaimFilter(ws) = %q matches %q", f, other)
	}
}

func TestWaiterKey(t *testing.T) {
	claim, _, err := subjects.ClaimKey("ws", "src/main.go")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ client, want string }{
		{"c1", "c1.ws.src.main=2Ego"},
		{"host.pid.1", "host=2Epid=2E1.ws.src.main=2Ego"},
		{"*", "=2A.ws.src.main=2Ego"},
	}
	for _, tt := range tests {
		got := subjects.WaiterKey(tt.client, claim)
		if got != tt.want {
			t.Errorf("WaiterKey(%q, %q) = %q, want %q", tt.client, claim, got, tt.want)
		}
		if f := subjects.WaiterFilter(claim); !subjectMatches(f, got) {
			t.Errorf("WaiterFilter(%q) = %q does not match %q", claim, f, got)
		}
		if f := subjects.WaiterClientFilter(tt.client); !subjectMatches(f, got) {
			t.Errorf("WaiterClientFilter(%q) = %q does not match %q", tt.client, f, got)
		}
	}

	if got, want := subjects.WaiterFilter(claim), "*.ws.src.main=2Ego"; got != want {
		t.Errorf("WaiterFilter(%q) = %q, want %q", claim, got, want)
	}
	if got, want := subjects.WaiterClientFilter("c.1"), "c=2E1.>"; got != want {
		t.Errorf("WaiterClientFilter(c.1) = %q, want %q", got, want)
	}

	// A waiter filter selects waits on exactly that claim key: not on a path
	// below it, beside it, or in another namespace.
	f := subjects.WaiterFilter(claim)
	for _, p := range [][2]string{{"ws", "src/main.go/x"}, {"ws", "src/main.gox"}, {"ws", "src"}, {"ws2", "src/main.go"}} {
		k, _, err := subjects.ClaimKey(p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		if w := subjects.WaiterKey("c1", k); subjectMatches(f, w) {
			t.Errorf("WaiterFilter(%q) = %q matches %q", claim, f, w)
		}
	}
	// A client's filter selects none of another client's waits.
	if w := subjects.WaiterKey("c2", claim); subjectMatches(subjects.WaiterClientFilter("c1"), w) {
		t.Errorf("WaiterClientFilter(c1) matches %q", w)
	}
}

func TestCheckpointKey(t *testing.T) {
	tests := []struct {
		ns, name, agent     string
		wantKey, wantFilter string
	}{
		{"ws", "sync", "alice", "ws.sync.alice", "ws.sync.*"},
		{"ws", "phase.1", "a*", "ws.phase=2E1.a=2A", "ws.phase=2E1.*"},
		{"my.ws", ">", "a.b", "my=2Ews.=3E.a=2Eb", "my=2Ews.=3E.*"},
	}
	for _, tt := range tests {
		key, err := subjects.CheckpointKey(tt.ns, tt.name, tt.agent)
		if err != nil || key != tt.wantKey {
			t.Errorf("CheckpointKey(%q, %q, %q) = %q, %v; want %q, nil", tt.ns, tt.name, tt.agent, key, err, tt.wantKey)
		}
		filter, err := subjects.CheckpointFilter(tt.ns, tt.name)
		if err != nil || filter != tt.wantFilter {
			t.Errorf("CheckpointFilter(%q, %q) = %q, %v; want %q, nil", tt.ns, tt.name, filter, err, tt.wantFilter)
		}
		if !subjectMatches(filter, key) {
			t.Errorf("CheckpointFilter %q does not match CheckpointKey %q", filter, key)
		}
		if err := checkSubject(key, 3); err != nil {
			t.Errorf("CheckpointKey(%q, %q, %q): %v", tt.ns, tt.name, tt.agent, err)
		}
	}

	// One checkpoint's filter does not select another checkpoint's arrivals.
	k, err := subjects.CheckpointKey("ws", "sync2", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := subjects.CheckpointFilter("ws", "sync"); subjectMatches(f, k) {
		t.Errorf("CheckpointFilter(ws, sync) = %q matches %q", f, k)
	}

	errTests := []struct {
		ns, name, agent string
		want            error
	}{
		{"", "sync", "alice", subjects.ErrInvalidNamespace},
		{"ws", "", "alice", subjects.ErrInvalidName},
		{"ws", "a b", "alice", subjects.ErrInvalidName},
		{"ws", "sync", "", subjects.ErrInvalidAgent},
		{"ws", "sync", "al\nice", subjects.ErrInvalidAgent},
	}
	for _, tt := range errTests {
		if got, err := subjects.CheckpointKey(tt.ns, tt.name, tt.agent); !errors.Is(err, tt.want) {
			t.Errorf("CheckpointKey(%q, %q, %q) = %q, %v; want error wrapping %v", tt.ns, tt.name, tt.agent, got, err, tt.want)
		}
		if tt.want == subjects.ErrInvalidAgent {
			continue
		}
		if got, err := subjects.CheckpointFilter(tt.ns, tt.name); !errors.Is(err, tt.want) {
			t.Errorf("CheckpointFilter(%q, %q) = %q, %v; want error wrapping %v", tt.ns, tt.name, got, err, tt.want)
		}
	}
}

func TestBroadcastSubject(t *testing.T) {
	tests := []struct{ ns, channel, want string }{
		{"ws", "general", "coord.bcast.ws.general"},
		{"ws", "a.b", "coord.bcast.ws.a=2Eb"},
		{"ws", ">", "coord.bcast.ws.=3E"},
		{"ws", "*", "coord.bcast.ws.=2A"},
		{"ws", "#dev", "coord.bcast.ws.=23dev"},
	}
	for _, tt := range tests {
		got, err := subjects.BroadcastSubject(tt.ns, tt.channel)
		if err != nil || got != tt.want {
			t.Errorf("BroadcastSubject(%q, %q) = %q, %v; want %q, nil", tt.ns, tt.channel, got, err, tt.want)
			continue
		}
		if err := checkSubject(got, 4); err != nil {
			t.Errorf("BroadcastSubject(%q, %q): %v", tt.ns, tt.channel, err)
		}
		if !subjectMatches(subjects.BroadcastPrefix+".>", got) {
			t.Errorf("BroadcastSubject(%q, %q) = %q is outside %s.>", tt.ns, tt.channel, got, subjects.BroadcastPrefix)
		}
	}
	errTests := []struct {
		ns, channel string
		want        error
	}{
		{"", "general", subjects.ErrInvalidNamespace},
		{"w\ts", "general", subjects.ErrInvalidNamespace},
		{"ws", "", subjects.ErrInvalidChannel},
		{"ws", "gen eral", subjects.ErrInvalidChannel},
		{"ws", strings.Repeat("c", subjects.MaxNameBytes+1), subjects.ErrInvalidChannel},
	}
	for _, tt := range errTests {
		if got, err := subjects.BroadcastSubject(tt.ns, tt.channel); !errors.Is(err, tt.want) {
			t.Errorf("BroadcastSubject(%q, %.40q) = %q, %v; want error wrapping %v", tt.ns, tt.channel, got, err, tt.want)
		}
	}
}

func TestHandoffSubject(t *testing.T) {
	tests := []struct{ ns, agent, want string }{
		{"ws", "alice", "coord.handoff.ws.alice"},
		{"ws", "a.b", "coord.handoff.ws.a=2Eb"},
		{"ws", ">", "coord.handoff.ws.=3E"},
		{"w.s", "*", "coord.handoff.w=2Es.=2A"},
	}
	for _, tt := range tests {
		got, err := subjects.HandoffSubject(tt.ns, tt.agent)
		if err != nil || got != tt.want {
			t.Errorf("HandoffSubject(%q, %q) = %q, %v; want %q, nil", tt.ns, tt.agent, got, err, tt.want)
			continue
		}
		if err := checkSubject(got, 4); err != nil {
			t.Errorf("HandoffSubject(%q, %q): %v", tt.ns, tt.agent, err)
		}
		if !subjectMatches(subjects.HandoffPrefix+".>", got) {
			t.Errorf("HandoffSubject(%q, %q) = %q is outside %s.>", tt.ns, tt.agent, got, subjects.HandoffPrefix)
		}
	}
	errTests := []struct {
		ns, agent string
		want      error
	}{
		{"", "alice", subjects.ErrInvalidNamespace},
		{"ws", "", subjects.ErrInvalidAgent},
		{"ws", "al ice", subjects.ErrInvalidAgent},
		{"ws", "\xff", subjects.ErrInvalidAgent},
	}
	for _, tt := range errTests {
		if got, err := subjects.HandoffSubject(tt.ns, tt.agent); !errors.Is(err, tt.want) {
			t.Errorf("HandoffSubject(%q, %q) = %q, %v; want error wrapping %v", tt.ns, tt.agent, got, err, tt.want)
		}
	}
}

// handoffAgentEncoded builds an agent ID of at most MaxNameBytes whose
// encoded token is exactly n bytes: k bytes of '*' (3 bytes each once
// encoded) and the rest 'a'.
func handoffAgentEncoded(t *testing.T, n int) string {
	t.Helper()
	for k := 0; 3*k <= n; k++ {
		if m := n - 3*k; k+m <= subjects.MaxNameBytes {
			return strings.Repeat("*", k) + strings.Repeat("a", m)
		}
	}
	t.Fatalf("no agent ID of at most %d bytes encodes to %d bytes", subjects.MaxNameBytes, n)
	return ""
}

func TestHandoffConsumer(t *testing.T) {
	tests := []struct{ ns, agent, want string }{
		{"ws", "alice", "handoff==ws==alice"},
		{"ws", "*", "handoff==ws===2A"},
		{"ws", ">", "handoff==ws===3E"},
		{"ws", "a.b", "handoff==ws==a=2Eb"},
		{"ws", "a==b", "handoff==ws==a=3D=3Db"},
		{"w.s", "a", "handoff==w=2Es==a"},
	}
	for _, tt := range tests {
		got, err := subjects.HandoffConsumer(tt.ns, tt.agent)
		if err != nil || got != tt.want {
			t.Errorf("HandoffConsumer(%q, %q) = %q, %v; want %q, nil", tt.ns, tt.agent, got, err, tt.want)
		}
	}

	errTests := []struct {
		ns, agent string
		want      error
	}{
		{"", "alice", subjects.ErrInvalidNamespace},
		{"w s", "alice", subjects.ErrInvalidNamespace},
		{"ws", "", subjects.ErrInvalidAgent},
		{"ws", "a\x00", subjects.ErrInvalidAgent},
	}
	for _, tt := range errTests {
		if got, err := subjects.HandoffConsumer(tt.ns, tt.agent); !errors.Is(err, tt.want) {
			t.Errorf("HandoffConsumer(%q, %q) = %q, %v; want error wrapping %v", tt.ns, tt.agent, got, err, tt.want)
		}
	}
}

func TestHandoffConsumerDistinctAndValid(t *testing.T) {
	longNS := strings.Repeat("é", subjects.MaxNamespaceBytes/2)
	longAgent := strings.Repeat("*", subjects.MaxNameBytes)
	agents := []string{
		"*", ">", "a.b", "a==b", "a=2Eb", "a=3D=3Db", "a_b", "a-b", "a/b", `a\b`, "ab", "é", "=", "==", "=2A",
		"a", "b_c", "c", "h", "h=", longAgent, longAgent[1:] + ">", longAgent[1:] + ".",
	}
	namespaces := []string{"ws", "a", "a_b", "a=", "a=3D", "handoff", "h", "w.s", "ws=", longNS, longNS[2:] + "e"}
	type pair struct{ ns, agent string }
	seen := make(map[string]pair)
	for _, ns := range namespaces {
		for _, agent := range agents {
			name, err := subjects.HandoffConsumer(ns, agent)
			if err != nil {
				t.Errorf("HandoffConsumer(%q, %q): %v", ns, agent, err)
				continue
			}
			if err := checkConsumerName(name); err != nil {
				t.Errorf("HandoffConsumer(%.20q, %.20q): %v", ns, agent, err)
			}
			if prev, ok := seen[name]; ok {
				t.Errorf("HandoffConsumer(%q, %q) = HandoffConsumer(%q, %q) = %q", ns, agent, prev.ns, prev.agent, name)
			}
			seen[name] = pair{ns, agent}
		}
	}

	// The namespace/agent split is not ambiguous, in the readable form or the
	// hashed one.
	tricky := [][2]pair{
		{{"a_b", "c"}, {"a", "b_c"}},
		{{"a=", "b"}, {"a", "=b"}},
		{{"a", "=b"}, {"a=", "b"}},
		{{"a==", "b"}, {"a", "==b"}},
		{{longNS, longAgent}, {longNS[2:], "é" + longAgent[2:]}},
	}
	for _, tp := range tricky {
		a, errA := subjects.HandoffConsumer(tp[0].ns, tp[0].agent)
		b, errB := subjects.HandoffConsumer(tp[1].ns, tp[1].agent)
		if errA != nil || errB != nil {
			t.Errorf("HandoffConsumer errors: %v, %v", errA, errB)
			continue
		}
		if a == b {
			t.Errorf("HandoffConsumer(%.20q, %.20q) = HandoffConsumer(%.20q, %.20q) = %q", tp[0].ns, tp[0].agent, tp[1].ns, tp[1].agent, a)
		}
	}
}

func TestHandoffConsumerLongNames(t *testing.T) {
	const readable = "handoff==ws=="
	tests := []struct {
		name   string
		agent  string
		hashed bool
	}{
		{"just fits", handoffAgentEncoded(t, 255-len(readable)), false},
		{"one byte over", handoffAgentEncoded(t, 256-len(readable)), true},
		{"longest agent all escaped", strings.Repeat("*", subjects.MaxNameBytes), true},
		{"longest agent multibyte", strings.Repeat("日", subjects.MaxNameBytes/3), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := subjects.ValidateAgent(tt.agent); err != nil {
				t.Fatalf("test agent is invalid: %v", err)
			}
			got, err := subjects.HandoffConsumer("ws", tt.agent)
			if err != nil {
				t.Fatalf("HandoffConsumer(ws, %.20q): %v", tt.agent, err)
			}
			if err := checkConsumerName(got); err != nil {
				t.Error(err)
			}
			if hashed := strings.HasPrefix(got, "handoff=h="); hashed != tt.hashed {
				t.Errorf("HandoffConsumer(ws, %.20q) = %q: hashed = %v, want %v", tt.agent, got, hashed, tt.hashed)
			}
			if !tt.hashed {
				if want := readable + subjects.EncodeToken(tt.agent); got != want || len(got) != 255 {
					t.Errorf("HandoffConsumer(ws, %.20q) = %q (%d bytes), want %q (255 bytes)", tt.agent, got, len(got), want)
				}
			}
		})
	}

	// The longest namespace and agent IDs, escaped in full.
	ns := strings.Repeat(">", subjects.MaxNamespaceBytes)
	got, err := subjects.HandoffConsumer(ns, strings.Repeat(".", subjects.MaxNameBytes))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkConsumerName(got); err != nil {
		t.Error(err)
	}
}

var streamOrBucketName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func TestStoreNames(t *testing.T) {
	names := []string{
		subjects.ClaimsBucket, subjects.WaitersBucket, subjects.CheckpointsBucket,
		subjects.BroadcastStream, subjects.HandoffStream, subjects.EventsStream,
	}
	seen := make(map[string]bool)
	for _, n := range names {
		if !streamOrBucketName.MatchString(n) {
			t.Errorf("stream or bucket name %q holds bytes outside [A-Za-z0-9_-]", n)
		}
		if seen[n] {
			t.Errorf("stream or bucket name %q used twice", n)
		}
		seen[n] = true
	}
	for _, p := range []string{subjects.BroadcastPrefix, subjects.HandoffPrefix} {
		if err := checkSubject(p, 2); err != nil {
			t.Errorf("subject prefix: %v", err)
		}
	}
	if subjectMatches(subjects.BroadcastPrefix+".>", subjects.HandoffPrefix+".ws.a") ||
		subjectMatches(subjects.HandoffPrefix+".>", subjects.BroadcastPrefix+".ws.a") {
		t.Errorf("subject prefixes %q and %q overlap", subjects.BroadcastPrefix, subjects.HandoffPrefix)
	}
}
