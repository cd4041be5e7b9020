package coord

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/cogos-dev/coord/subjects"
	"github.com/cogos-dev/coord/testenv"
)

// TestChaosClaimsLinearizable records histories of claim operations from
// several agents on a 3-node cluster of child processes while a node is
// crashed (SIGKILL) and restarted every few seconds, and checks them with
// porcupine against a sequential model of the claim table. It also checks
// fencing (tokens granted on a path strictly increase across holders) and
// measures failover: the time from the crash of the claims stream's leader
// to the next successful claim.
//
// The default run lasts about a minute of faults. COORD_CHAOS_DURATION
// (a Go duration, e.g. 10m) sets a longer soak, and COORD_CHAOS_SYNC=always
// runs the nodes with sync_interval: always:
//
//	COORD_CHAOS_DURATION=10m go test -race -count=1 -timeout 30m -run TestChaosClaimsLinearizable -v ./coord/
func TestChaosClaimsLinearizable(t *testing.T) {
	dur := 60 * time.Second
	if s := os.Getenv("COORD_CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("COORD_CHAOS_DURATION=%q: want a positive Go duration", s)
		}
		dur = d
	}
	const (
		nAgents = 6
		nPaths  = 3
	)
	var copts []testenv.ClusterOption
	if os.Getenv("COORD_CHAOS_SYNC") == "always" {
		copts = append(copts, testenv.WithSyncAlways())
	}
	cl := testenv.StartProcessCluster(t, 3, copts...)
	// Leases long enough that none expires during the run: expiry has its
	// own tests, and is not an operation of the model.
	ttl := roundUpSecond(dur + 5*time.Minute)
	agents := make([]*Client, nAgents)
	for i := range agents {
		agents[i] = newClusterClient(t, cl, fmt.Sprintf("agent%d", i), WithClaimTTL(ttl), WithNamespace("chaos"))
	}
	probe := newClusterClient(t, cl, "probe", WithClaimTTL(ttl), WithNamespace("chaos"))
	cl.WaitBucketCurrent(subjects.ClaimsBucket, 30*time.Second)
	paths := make([]string, nPaths)
	for i := range paths {
		paths[i] = fmt.Sprintf("file%d.go", i)
	}

	rec := &historyRecorder{base: time.Now()}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runAgent(c, i, paths, rec, stop, uint64(i))
		}()
	}
	sender := newClusterClient(t, cl, "sender", WithNamespace("chaos"))
	recipient := newClusterClient(t, cl, "recipient", WithNamespace("chaos"))
	hlog := &handoffLog{sent: map[string]bool{}, accepted: map[string]bool{}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		runHandoffs(sender, recipient, hlog, stop)
	}()
	blog := &broadcastLog{acked: map[uint64]string{}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		runBroadcasts(sender, blog, stop)
	}()
	probes := &probeLog{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		runProbe(probe, probes, stop)
	}()

	// The nemesis runs on the test goroutine: crash a node (the claims
	// stream's leader half of the time, else a random one), restart it,
	// wait until the stream is whole again, repeat.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	type crash struct {
		at     time.Time
		node   string
		leader bool
	}
	var crashes []crash
	end := time.Now().Add(dur)
	stream := "KV_" + subjects.ClaimsBucket
	for time.Now().Before(end) {
		pause(stop, time.Duration(1000+rng.IntN(2000))*time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		leader, _, lerr := cl.StreamLeader(ctx, stream)
		cancel()
		victim := cl.Node(rng.IntN(3))
		if lerr == nil && rng.IntN(2) == 0 {
			victim = leader
		}
		wasLeader := lerr == nil && victim == leader
		at := time.Now()
		victim.Kill()
		crashes = append(crashes, crash{at: at, node: victim.Name(), leader: wasLeader})
		pause(stop, time.Duration(500+rng.IntN(1500))*time.Millisecond)
		victim.Start()
		ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
		_, err := cl.AwaitStreamCurrent(ctx, stream)
		if err == nil {
			_, err = cl.AwaitMetaLeader(ctx)
		}
		cancel()
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("cluster did not recover after crash %d of %s: %v", len(crashes), victim.Name(), err)
		}
	}
	// A quiet tail, so operations in flight at the last crash finish.
	pause(stop, 2*time.Second)
	close(stop)
	wg.Wait()

	ops := rec.operations()
	ambiguous := 0
	why := map[string]int{}
	for _, op := range ops {
		if op.Return == math.MaxInt64 {
			ambiguous++
			why[op.Output.(claimOutput).Err]++
		}
	}
	for e, n := range why {
		t.Logf("ambiguous %dx: %s", n, e)
	}
	leaderCrashes := 0
	var failovers []time.Duration
	for _, c := range crashes {
		if !c.leader {
			continue
		}
		leaderCrashes++
		if d, ok := probes.firstAfter(c.at); ok {
			failovers = append(failovers, d)
		}
	}

	model := claimModel()
	res, info := porcupine.CheckOperationsVerbose(model, ops, 5*time.Minute)
	summary := fmt.Sprintf("chaos: %v of faults; histories: %d (one per path); operations: %d (%d ambiguous); crashes: %d (%d of the claims leader); probe claims: %d",
		dur.Round(time.Second), nPaths, len(ops), ambiguous, len(crashes), leaderCrashes, probes.count())
	chaosReport(t, "%s", summary)
	if len(failovers) > 0 {
		slices.Sort(failovers)
		chaosReport(t, "failover (claims leader SIGKILL -> next successful claim) over %d crashes: p50 %v, max %v, all %v",
			len(failovers), failovers[len(failovers)/2].Round(time.Millisecond), failovers[len(failovers)-1].Round(time.Millisecond), roundAll(failovers))
	}
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Errorf("porcupine timed out checking %d operations", len(ops))
	default:
		out := filepath.Join(os.TempDir(), fmt.Sprintf("coord-chaos-%d.html", time.Now().Unix()))
		if err := porcupine.VisualizePath(model, info, out); err != nil {
			t.Logf("visualizing: %v", err)
		}
		t.Errorf("history is not linearizable; visualization in %s", out)
	}
	if err := checkFencing(ops); err != nil {
		t.Error(err)
	}
	checkHandoffs(t, cl, recipient, hlog)
	checkBroadcasts(t, cl, recipient, blog)
	if len(crashes) == 0 || len(ops) < 100 {
		t.Errorf("too little happened: %d crashes, %d operations", len(crashes), len(ops))
	}
	if leaderCrashes > 0 && len(failovers) == 0 {
		t.Errorf("no claim succeeded after any of %d leader crashes", leaderCrashes)
	}
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

// pause waits d, or less if stop is closed.
func pause(stop <-chan struct{}, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-stop:
	case <-tm.C:
	}
}

// opTimeout bounds one operation: longer than a leader election (4 to 9 s
// after a crash), so that most operations in flight during a failover
// finish rather than end ambiguous.
const opTimeout = 12 * time.Second

// runAgent issues random claim operations on paths until stop is closed,
// one at a time, recording each.
func runAgent(c *Client, id int, paths []string, rec *historyRecorder, stop <-chan struct{}, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 42))
	for {
		select {
		case <-stop:
			return
		default:
		}
		path := paths[rng.IntN(len(paths))]
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		in := claimInput{Path: path, Agent: c.Agent()}
		var out claimOutput
		call := rec.now()
		switch r := rng.IntN(100); {
		case r < 40:
			in.Op = opAcquire
			cl, err := c.TryAcquire(ctx, path)
			var ce *ClaimedError
			switch {
			case err == nil:
				out = claimOutput{Kind: outGranted, Token: cl.Token}
			case errors.As(err, &ce):
				out = claimOutput{Kind: outRefused, Owner: ce.Owner}
			default:
				out = claimOutput{Kind: outUnknown, Err: err.Error()}
			}
		case r < 75:
			in.Op = opRelease
			err := c.ReleasePath(ctx, path)
			switch {
			case err == nil:
				out = claimOutput{Kind: outOK}
			case errors.Is(err, ErrNotOwner):
				out = claimOutput{Kind: outNotOwner}
			default:
				out = claimOutput{Kind: outUnknown, Err: err.Error()}
			}
		default:
			in.Op = opOwner
			owner, err := c.Owner(ctx, path)
			switch {
			case err == nil:
				out = claimOutput{Kind: outOwner, Owner: owner}
			case errors.Is(err, ErrNotClaimed):
				out = claimOutput{Kind: outOwner}
			default:
				// A failed read had no effect: leave it out.
				cancel()
				continue
			}
		}
		cancel()
		ret := rec.now()
		if out.Kind == outUnknown {
			// It may have taken effect at any time after the call
			// (porcupine's convention for an operation with no response).
			ret = math.MaxInt64
		}
		rec.add(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
		pause(stop, time.Duration(10+rng.IntN(40))*time.Millisecond)
	}
}

// probeLog records when the probe's successful claims were called and
// returned.
type probeLog struct {
	mu sync.Mutex
	ok []probeClaim
}

type probeClaim struct{ call, ret time.Time }

func (p *probeLog) add(call, ret time.Time) {
	p.mu.Lock()
	p.ok = append(p.ok, probeClaim{call, ret})
	p.mu.Unlock()
}

func (p *probeLog) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ok)
}

// firstAfter is the time from t to the return of the first successful
// probe claim called after t (a claim in flight at t may have been
// committed before the crash).
func (p *probeLog) firstAfter(t time.Time) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := sort.Search(len(p.ok), func(i int) bool { return p.ok[i].call.After(t) })
	if i == len(p.ok) {
		return 0, false
	}
	return p.ok[i].ret.Sub(t), true
}

// runProbe claims and releases a path of its own in a loop, so the time to
// the first claim after a crash can be measured.
func runProbe(c *Client, log *probeLog, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		// A short timeout: a call sent during an election is dropped, and
		// the figure would be off by up to this much.
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		call := time.Now()
		cl, err := c.TryAcquire(ctx, "probe")
		if err == nil {
			log.add(call, time.Now())
			_ = cl.Release(ctx) // a failed release is re-claimed by the next TryAcquire
		}
		cancel()
		pause(stop, 20*time.Millisecond)
	}
}

// historyRecorder collects operations from many goroutines.
type historyRecorder struct {
	base time.Time
	mu   sync.Mutex
	ops  []porcupine.Operation
}

func (r *historyRecorder) now() int64 { return int64(time.Since(r.base)) }

func (r *historyRecorder) add(op porcupine.Operation) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

func (r *historyRecorder) operations() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops)
}

// handoffLog records the handoffs whose send or accept was acknowledged.
type handoffLog struct {
	mu             sync.Mutex
	sent, accepted map[string]bool
	ambiguousSend  int
}

// runHandoffs sends handoffs from sender to recipient and has the
// recipient accept every other one, recording what was acknowledged.
func runHandoffs(sender, recipient *Client, log *handoffLog, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		h, err := sender.Handoff(ctx, recipient.Agent(), fmt.Sprintf("artifact-%d", i), "chaos")
		log.mu.Lock()
		if err == nil {
			log.sent[h.ID] = true
		} else {
			log.ambiguousSend++
		}
		log.mu.Unlock()
		if err == nil && i%2 == 0 {
			if _, err := recipient.Accept(ctx, h.ID); err == nil {
				log.mu.Lock()
				log.accepted[h.ID] = true
				log.mu.Unlock()
			}
		}
		cancel()
		pause(stop, 100*time.Millisecond)
	}
}

// checkHandoffs checks, once the cluster is whole, that every acknowledged
// handoff is still there (pending or decided) and every acknowledged
// acceptance is recorded.
func checkHandoffs(t *testing.T, cl *testenv.Cluster, recipient *Client, log *handoffLog) {
	t.Helper()
	cl.WaitStreamCurrent(subjects.HandoffStream, 60*time.Second)
	var pending, archive []Handoff
	retryUntil(t, 30*time.Second, "list handoffs after the chaos", func(ctx context.Context) error {
		var err error
		if pending, err = recipient.Handoffs(ctx, ""); err != nil {
			return err
		}
		archive, err = recipient.HandoffArchive(ctx, "")
		return err
	})
	status := map[string]string{}
	for _, h := range pending {
		status[h.ID] = h.Status
	}
	for _, h := range archive {
		status[h.ID] = h.Status
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	lost, unaccepted := 0, 0
	for id := range log.sent {
		if _, ok := status[id]; !ok {
			lost++
			t.Errorf("acknowledged handoff %s is missing after the chaos", id)
		}
	}
	for id := range log.accepted {
		if status[id] != HandoffAccepted {
			unaccepted++
			t.Errorf("acknowledged acceptance of %s lost: status %q", id, status[id])
		}
	}
	chaosReport(t, "handoffs: %d acknowledged (%d sends failed), %d acceptances acknowledged; lost %d, acceptances lost %d",
		len(log.sent), log.ambiguousSend, len(log.accepted), lost, unaccepted)
	if len(log.sent) == 0 {
		t.Error("no handoff was acknowledged during the chaos")
	}
}

const chaosChannel = "chaos-news"

// broadcastLog records the broadcasts whose publish was acknowledged.
type broadcastLog struct {
	mu     sync.Mutex
	acked  map[uint64]string // stream sequence -> message
	failed int
}

// runBroadcasts publishes on one channel in a loop, recording each
// acknowledged message.
func runBroadcasts(c *Client, log *broadcastLog, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		msg := fmt.Sprintf("news %d", i)
		b, err := c.Publish(ctx, chaosChannel, msg)
		cancel()
		log.mu.Lock()
		if err == nil {
			log.acked[b.Seq] = msg
		} else {
			log.failed++
		}
		log.mu.Unlock()
		pause(stop, 100*time.Millisecond)
	}
}

// checkBroadcasts checks, once the cluster is whole, that every
// acknowledged broadcast is listed, with its message, once.
func checkBroadcasts(t *testing.T, cl *testenv.Cluster, reader *Client, log *broadcastLog) {
	t.Helper()
	cl.WaitStreamCurrent(subjects.BroadcastStream, 60*time.Second)
	var got []Broadcast
	retryUntil(t, 30*time.Second, "list broadcasts after the chaos", func(ctx context.Context) error {
		var err error
		got, err = reader.Broadcasts(ctx, chaosChannel, 0)
		return err
	})
	seen := map[uint64]int{}
	for _, b := range got {
		seen[b.Seq]++
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	lost := 0
	for seq, msg := range log.acked {
		if seen[seq] != 1 {
			lost++
			t.Errorf("acknowledged broadcast %d (%q) listed %d times after the chaos", seq, msg, seen[seq])
		}
	}
	for _, b := range got {
		if msg, ok := log.acked[b.Seq]; ok && b.Message != msg {
			t.Errorf("broadcast %d reads %q, want %q", b.Seq, b.Message, msg)
		}
	}
	chaosReport(t, "broadcasts: %d acknowledged (%d publishes failed), %d listed; lost %d", len(log.acked), log.failed, len(got), lost)
	if len(log.acked) == 0 {
		t.Error("no broadcast was acknowledged during the chaos")
	}
}

// chaosReport logs a summary line and, when COORD_CHAOS_REPORT names a
// file, appends it there too: go test shows a passing test's log only with
// -v, and CI prints the file after the suite.
func chaosReport(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	if path := os.Getenv("COORD_CHAOS_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("chaos report: %v", err)
			return
		}
		defer f.Close()
		if _, err := fmt.Fprintln(f, line); err != nil {
			t.Errorf("chaos report: %v", err)
		}
	}
}
