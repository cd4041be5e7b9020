package coord

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cogos-dev/coord/subjects"
	"github.com/cogos-dev/coord/testenv"
)

// newClusterClient starts a client with R3 buckets connected to every node
// of cl, closed when the test ends. The first calls after a cluster starts
// can time out while it settles: New is retried for a while.
func newClusterClient(t testing.TB, cl *testenv.Cluster, agent string, opts ...Option) *Client {
	t.Helper()
	return newClusterClientURL(t, cl.URLs(), agent, opts...)
}

// newPinnedClient is a client that talks to one node only: it ignores the
// other servers the cluster gossips, so stopping that node cuts it off.
func newPinnedClient(t testing.TB, n *testenv.Node, agent string, opts ...Option) *Client {
	t.Helper()
	return newClusterClientURL(t, n.URL(), agent, append([]Option{WithNATSOptions(nats.IgnoreDiscoveredServers())}, opts...)...)
}

func newClusterClientURL(t testing.TB, url, agent string, opts ...Option) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []Option{WithURL(url), WithAgent(agent), WithNamespace("test"), WithReplicas(3),
		WithNATSOptions(nats.ReconnectWait(50 * time.Millisecond))}
	for {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := New(cctx, append(base, opts...)...)
		ccancel()
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		if ctx.Err() != nil {
			t.Fatalf("New(%s) on the cluster: %v", agent, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const claimsStream = "KV_" + subjects.ClaimsBucket

// retryUntil retries f every 50ms until it succeeds or d passes, then
// fails the test with f's last error.
func retryUntil(t testing.TB, d time.Duration, what string, f func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		err := f(actx)
		acancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A client with WithReplicas(3) creates R3 buckets, and a client given all
// node URLs keeps working when the node it is connected to goes away.
func TestClusterReplicasAndNodeLoss(t *testing.T) {
	cl := testenv.StartCluster(t, 3)
	a := newClusterClient(t, cl, "alice")
	b := newClusterClient(t, cl, "bob")
	ctx := testCtx(t, 60*time.Second)
	for _, bucket := range []string{subjects.ClaimsBucket, subjects.WaitersBucket} {
		cl.WaitBucketCurrent(bucket, 20*time.Second)
		st, err := a.JetStream().Stream(ctx, "KV_"+bucket)
		if err != nil {
			t.Fatalf("stream of %s: %v", bucket, err)
		}
		info := st.CachedInfo()
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("%s: replicas %d, cluster %+v; want R3 with a leader and 2 replicas", bucket, info.Config.Replicas, info.Cluster)
		}
	}
	ca, err := a.TryAcquire(ctx, "src/a.go")
	if err != nil {
		t.Fatalf("TryAcquire: %v", err)
	}
	// Take away the node alice is connected to.
	gone := cl.NodeByName(a.Conn().ConnectedServerName())
	if gone == nil {
		t.Fatalf("alice connected to unknown server %q", a.Conn().ConnectedServerName())
	}
	gone.Stop()
	var cb *Claim
	retryUntil(t, 20*time.Second, "alice claims through the node loss", func(ctx context.Context) error {
		var err error
		_, err = a.TryAcquire(ctx, "src/b.go")
		return err
	})
	if got := a.Conn().ConnectedServerName(); got == gone.Name() {
		t.Fatalf("alice still connected to the stopped node %s", got)
	}
	retryUntil(t, 20*time.Second, "bob sees alice's claim", func(ctx context.Context) error {
		owner, err := b.Owner(ctx, "src/a.go")
		if err == nil && owner != "alice" {
			t.Fatalf("owner of src/a.go after the node loss: %q, want alice", owner)
		}
		return err
	})
	if !ca.Held() {
		t.Fatalf("alice's claim lost across the node loss: %v", ca.Err())
	}
	if err := ca.Release(ctx); err != nil {
		t.Fatalf("release after the node loss: %v", err)
	}
	retryUntil(t, 20*time.Second, "bob claims what alice released", func(ctx context.Context) error {
		var err error
		cb, err = b.TryAcquire(ctx, "src/a.go")
		return err
	})
	if cb.Token <= ca.Token {
		t.Fatalf("token %d after %d: want it to increase", cb.Token, ca.Token)
	}
	// The node comes back with its store and catches up.
	gone.Start()
	cl.WaitBucketCurrent(subjects.ClaimsBucket, 30*time.Second)
}

// A leader change of the claims stream (a clean step-down) does not cost a
// 5-second claim its lease: renewals go to the new leader.
func TestClusterKeepaliveSurvivesStepdown(t *testing.T) {
	cl := testenv.StartCluster(t, 3)
	a := newClusterClient(t, cl, "alice")
	b := newClusterClient(t, cl, "bob")
	ctx := testCtx(t, 60*time.Second)
	cl.WaitBucketCurrent(subjects.ClaimsBucket, 20*time.Second)
	ca, err := a.TryAcquire(ctx, "held.txt", WithTTL(5*time.Second))
	if err != nil {
		t.Fatalf("TryAcquire: %v", err)
	}
	for range 1 {
		old, _, err := cl.StreamLeader(ctx, claimsStream)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Conn().RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+claimsStream, nil); err != nil {
			t.Fatalf("step-down: %v", err)
		}
		retryUntil(t, 20*time.Second, "a new claims leader", func(ctx context.Context) error {
			n, err := cl.StreamCurrent(ctx, claimsStream)
			if err == nil && n == old {
				return fmt.Errorf("leader is still %s", old.Name())
			}
			return err
		})
		// Outlive the lease: only renewals through the new leader keep it.
		rev := ca.Revision()
		time.Sleep(ca.TTL() + time.Second)
		if !ca.Held() {
			t.Fatalf("claim lost after a leader change: %v", ca.Err())
		}
		if ca.Revision() == rev {
			t.Fatalf("claim not renewed since the leader change (revision %d)", rev)
		}
	}
	_, err = b.TryAcquire(ctx, "held.txt")
	var ce *ClaimedError
	if !errors.As(err, &ce) || ce.Owner != "alice" || ce.Claim.Token != ca.Token {
		t.Fatalf("bob TryAcquire: %v; want ClaimedError by alice with token %d", err, ca.Token)
	}
}

// A crash (SIGKILL) of the claims stream's leader does not cost a claim its
// lease if the lease is longer than the failover (a new leader is elected
// 4 to 9 s after a crash; see docs/guarantees.md). The crash comes just
// before a renewal is due, the worst moment: 6.2 s into a 20 s lease.
func TestClusterKeepaliveSurvivesLeaderCrash(t *testing.T) {
	cl := testenv.StartProcessCluster(t, 3)
	a := newClusterClient(t, cl, "alice")
	b := newClusterClient(t, cl, "bob")
	ctx := testCtx(t, 90*time.Second)
	cl.WaitBucketCurrent(subjects.ClaimsBucket, 30*time.Second)
	ca, err := a.TryAcquire(ctx, "held.txt", WithTTL(20*time.Second))
	if err != nil {
		t.Fatalf("TryAcquire: %v", err)
	}
	leader, _, err := cl.StreamLeader(ctx, claimsStream)
	if err != nil {
		t.Fatal(err)
	}
	// Crash it just before a renewal is due: the worst moment.
	time.Sleep(ca.TTL()/3 - 500*time.Millisecond)
	rev := ca.Revision()
	leader.Kill()
	crashed := time.Now()
	retryUntil(t, 30*time.Second, "a renewal through the new leader", func(ctx context.Context) error {
		if !ca.Held() {
			t.Fatalf("claim lost %v after the leader crash: %v", time.Since(crashed), ca.Err())
		}
		if ca.Revision() == rev {
			return errors.New("not renewed yet")
		}
		return nil
	})
	t.Logf("first renewal after the crash of %s: %v later", leader.Name(), time.Since(crashed).Round(time.Millisecond))
	leader.Start()
	cl.WaitBucketCurrent(subjects.ClaimsBucket, 30*time.Second)
	rev = ca.Revision()
	retryUntil(t, ca.TTL(), "a renewal after the crashed leader came back", func(ctx context.Context) error {
		if !ca.Held() {
			t.Fatalf("claim lost after the crashed leader came back: %v", ca.Err())
		}
		if ca.Revision() == rev {
			return errors.New("not renewed yet")
		}
		return nil
	})
	var ce *ClaimedError
	retryUntil(t, 20*time.Second, "bob sees alice's claim", func(ctx context.Context) error {
		_, err := b.TryAcquire(ctx, "held.txt")
		if errors.As(err, &ce) {
			return nil
		}
		if err == nil {
			t.Fatal("bob was granted alice's claim")
		}
		return err
	})
	if ce.Owner != "alice" || ce.Claim.Token != ca.Token {
		t.Fatalf("held by %s with token %d; want alice with %d", ce.Owner, ce.Claim.Token, ca.Token)
	}
}

// A holder cut off from every server it can reach cannot renew; it is told
// it lost the claim no later than the moment another agent can get it.
func TestClusterIsolatedHolderLosesClaim(t *testing.T) {
	cl := testenv.StartCluster(t, 3)
	cl.WaitMetaLeader(20 * time.Second)
	// Set the buckets up first, so stopping one node leaves them a quorum.
	b := newClusterClient(t, cl, "bob")
	cl.WaitBucketCurrent(subjects.ClaimsBucket, 20*time.Second)
	ctx := testCtx(t, 60*time.Second)
	// Alice talks to one node only, not a leader of the claim buckets (so
	// the cluster side carries on without a failover when that node goes).
	only := followerOfBoth(t, ctx, cl)
	a := newPinnedClient(t, only, "alice")
	ca, err := a.TryAcquire(ctx, "isolated.txt", WithTTL(3*time.Second))
	if err != nil {
		t.Fatalf("TryAcquire: %v", err)
	}
	lostAt := make(chan time.Time, 1)
	go func() {
		<-ca.Lost()
		lostAt <- time.Now()
	}()
	only.Stop()
	cb, err := b.Acquire(ctx, "isolated.txt")
	if err != nil {
		t.Fatalf("bob Acquire: %v", err)
	}
	grantedAt := time.Now()
	select {
	case at := <-lostAt:
		if at.After(grantedAt) {
			t.Fatalf("alice learned of the loss %v after bob got the claim", at.Sub(grantedAt))
		}
		t.Logf("alice told %v before bob was granted", grantedAt.Sub(at))
	default:
		t.Fatal("bob holds the claim and alice still believes she does")
	}
	if !errors.Is(ca.Err(), ErrClaimLost) || ca.Held() {
		t.Fatalf("alice's claim: held %v, err %v; want ErrClaimLost", ca.Held(), ca.Err())
	}
	if cb.Token <= ca.Token {
		t.Fatalf("bob's token %d not above alice's %d", cb.Token, ca.Token)
	}
	// Back online, alice cannot release what bob holds.
	only.Start()
	retryUntil(t, 20*time.Second, "alice's release refused", func(ctx context.Context) error {
		err := ca.Release(ctx)
		if errors.Is(err, ErrNotOwner) {
			return nil
		}
		if err == nil {
			t.Fatal("alice released bob's claim")
		}
		return err
	})
}

// A blocked Acquire whose connection drops while the holder releases gets
// the claim once it reconnects: the release is not missed.
func TestClusterAcquireResumesAfterReconnect(t *testing.T) {
	cl := testenv.StartCluster(t, 3)
	a := newClusterClient(t, cl, "alice")
	cl.WaitBucketCurrent(subjects.ClaimsBucket, 20*time.Second)
	cl.WaitBucketCurrent(subjects.WaitersBucket, 20*time.Second)
	ctx := testCtx(t, 60*time.Second)
	only := followerOfBoth(t, ctx, cl)
	b := newPinnedClient(t, only, "bob")
	ca, err := a.TryAcquire(ctx, "queue.txt")
	if err != nil {
		t.Fatalf("TryAcquire: %v", err)
	}
	type result struct {
		cl  *Claim
		err error
		at  time.Time
	}
	got := make(chan result, 1)
	go func() {
		cb, err := b.Acquire(ctx, "queue.txt")
		got <- result{cb, err, time.Now()}
	}()
	// Wait until bob is queued: the claim carries the waiters flag.
	key, _, _ := a.claimKey("queue.txt")
	retryUntil(t, 10*time.Second, "bob queued", func(ctx context.Context) error {
		e, err := a.claims.Get(ctx, key)
		if err != nil {
			return err
		}
		rec, err := decodeClaim(key, e.Value)
		if err != nil || !rec.Waiters {
			return fmt.Errorf("not flagged yet (%v)", err)
		}
		return nil
	})
	only.Stop()
	// Calls made while the cluster notices the loss can go unanswered
	// until their deadline; what is tested here is bob's side.
	cl.WaitBucketCurrent(subjects.ClaimsBucket, 20*time.Second)
	cl.WaitBucketCurrent(subjects.WaitersBucket, 20*time.Second)
	if err := ca.Release(ctx); err != nil {
		t.Fatalf("release while bob is disconnected: %v", err)
	}
	select {
	case r := <-got:
		t.Fatalf("bob's Acquire returned while disconnected: %v", r.err)
	default:
	}
	only.Start()
	restarted := time.Now()
	r := <-got
	if r.err != nil {
		t.Fatalf("bob Acquire after reconnect: %v", r.err)
	}
	took := r.at.Sub(restarted)
	t.Logf("bob got the claim %v after his server came back", took.Round(time.Millisecond))
	// A missed wake-up would only be noticed by the waiter's renewal
	// (every waiterTTL/3).
	if took >= 2*time.Second {
		t.Fatalf("bob waited %v after reconnecting: the release was missed", took)
	}
	if r.cl.Token <= ca.Token || !r.cl.Held() {
		t.Fatalf("bob's claim: token %d (alice's %d), held %v", r.cl.Token, ca.Token, r.cl.Held())
	}
}

// followerOfBoth returns a node that leads neither claim bucket's stream
// (with three nodes and two streams there always is one).
func followerOfBoth(t testing.TB, ctx context.Context, cl *testenv.Cluster) *testenv.Node {
	t.Helper()
	cl.WaitBucketCurrent(subjects.WaitersBucket, 20*time.Second)
	lc, _, err := cl.StreamLeader(ctx, claimsStream)
	if err != nil {
		t.Fatal(err)
	}
	lw, _, err := cl.StreamLeader(ctx, "KV_"+subjects.WaitersBucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range cl.Nodes() {
		if n != lc && n != lw {
			return n
		}
	}
	t.Fatal("no node is free of claim-bucket leaders")
	return nil
}

// Regression: the client's one watch on its waiter keys was created with
// the context of the first blocked Acquire, and nats.go ends a watch when
// that context ends, so other waits lost their push wake-up (and fell back
// to the waiter renewal, seconds later).
func TestAcquireWakeupOutlivesFirstWaiter(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	b := newClient(t, srv, "bob")
	ctx := testCtx(t, 30*time.Second)
	for _, p := range []string{"one", "two"} {
		if _, err := a.TryAcquire(ctx, p); err != nil {
			t.Fatalf("TryAcquire %s: %v", p, err)
		}
	}
	queued := func(path string) {
		key, _, _ := a.claimKey(path)
		retryUntil(t, 10*time.Second, "bob queued on "+path, func(ctx context.Context) error {
			e, err := a.claims.Get(ctx, key)
			if err != nil {
				return err
			}
			if rec, err := decodeClaim(key, e.Value); err != nil || !rec.Waiters {
				return fmt.Errorf("not flagged yet (%v)", err)
			}
			return nil
		})
	}
	firstCtx, cancelFirst := context.WithCancel(ctx)
	first := make(chan error, 1)
	go func() {
		_, err := b.Acquire(firstCtx, "one")
		first <- err
	}()
	queued("one")
	type result struct {
		cl *Claim
		at time.Time
	}
	second := make(chan result, 1)
	go func() {
		cl, err := b.Acquire(ctx, "two")
		if err != nil {
			t.Errorf("second Acquire: %v", err)
		}
		second <- result{cl, time.Now()}
	}()
	queued("two")
	cancelFirst()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first Acquire after cancel: %v", err)
	}
	released := time.Now()
	if err := a.ReleasePath(ctx, "two"); err != nil {
		t.Fatalf("release: %v", err)
	}
	r := <-second
	if r.cl == nil {
		t.FailNow()
	}
	if took := r.at.Sub(released); took > time.Second {
		t.Fatalf("second waiter woke %v after the release: its wake-up was lost with the first waiter's context", took)
	}
}
