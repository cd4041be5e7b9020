package coord

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cogos-dev/coord/subjects"
	"github.com/cogos-dev/coord/testenv"
)

func agentNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}

// TestCheckpointSixteen: 16 agents (one client each) arrive concurrently and
// each then waits for all 16; every waiter returns. A waiter started after
// all arrived returns at once; re-arrivals do not double count.
func TestCheckpointSixteen(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 60*time.Second)
	names := agentNames("agent", 16)
	clients := make([]*Client, len(names))
	for i, n := range names {
		clients[i] = newClient(t, srv, n)
	}

	countDone := make(chan []string, 1)
	go func() {
		got, err := clients[0].WaitCheckpointCount(ctx, "phase1", len(names))
		if err != nil {
			t.Errorf("WaitCheckpointCount: %v", err)
		}
		countDone <- got
	}()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Arrive(ctx, "phase1"); err != nil {
				t.Errorf("%s Arrive: %v", c.Agent(), err)
				return
			}
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := c.WaitCheckpoint(wctx, "phase1", names); err != nil {
				t.Errorf("%s WaitCheckpoint: %v", c.Agent(), err)
			}
		}()
	}
	wg.Wait()
	if got := <-countDone; !slices.Equal(got, names) {
		t.Fatalf("WaitCheckpointCount returned %v, want %v", got, names)
	}

	late := newClient(t, srv, "late")
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := late.WaitCheckpoint(wctx, "phase1", names); err != nil {
		t.Fatalf("late WaitCheckpoint: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("late waiter took %v; all had arrived", d)
	}

	for _, c := range clients[:4] {
		if err := c.Arrive(ctx, "phase1"); err != nil {
			t.Fatalf("re-arrival: %v", err)
		}
	}
	got, err := late.Arrivals(ctx, "phase1")
	if err != nil || !slices.Equal(got, names) {
		t.Fatalf("Arrivals after re-arrivals: %v %v, want %v", err, got, names)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	_, err = late.WaitCheckpointCount(short, "phase1", len(names)+1)
	var te *CheckpointTimeoutError
	if !errors.As(err, &te) || len(te.Arrived) != len(names) {
		t.Fatalf("WaitCheckpointCount(17) after re-arrivals: %v, want a timeout with 16 arrived", err)
	}
}

func TestCheckpointTimeoutNamesMissing(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	a := newClient(t, srv, "a")
	b := newClient(t, srv, "b")
	for _, c := range []*Client{a, b} {
		if err := c.Arrive(ctx, "sync"); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := a.WaitCheckpoint(wctx, "sync", []string{"d", "a", "c", "b", "c"})
	var te *CheckpointTimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("got %v, want *CheckpointTimeoutError", err)
	}
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v: errors.Is ErrTimeout/DeadlineExceeded false", err)
	}
	if te.Name != "sync" || !slices.Equal(te.Missing, []string{"c", "d"}) || !slices.Equal(te.Arrived, []string{"a", "b"}) {
		t.Fatalf("timeout error %+v, want missing [c d], arrived [a b]", te)
	}
	if !strings.Contains(err.Error(), "c, d") {
		t.Fatalf("message %q does not name the missing agents", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout of 300ms took %v", d)
	}

	cctx, ccancel := context.WithCancel(ctx)
	go func() { time.Sleep(100 * time.Millisecond); ccancel() }()
	err = a.WaitCheckpoint(cctx, "sync", []string{"z"})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("cancelled wait: %v, want context.Canceled and not ErrTimeout", err)
	}

	wctx2, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	_, err = a.WaitCheckpointCount(wctx2, "sync", 3)
	if !errors.As(err, &te) || !slices.Equal(te.Arrived, []string{"a", "b"}) || !strings.Contains(err.Error(), "2 of 3") {
		t.Fatalf("count timeout: %v", err)
	}

	// Close during a wait ends it with ErrClosed.
	done := make(chan error, 1)
	go func() { done <- b.WaitCheckpoint(ctx, "sync", []string{"z"}) }()
	time.Sleep(100 * time.Millisecond)
	b.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("wait across Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the wait")
	}
	if err := b.Arrive(ctx, "sync"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Arrive on closed client: %v", err)
	}
}

// TestCheckpointSurvivesRestart: arrivals are durable; a waiter started after
// a restart sees them and is released by the remaining arrivals only.
func TestCheckpointSurvivesRestart(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 30*time.Second)
	a := newClient(t, srv, "a")
	b := newClient(t, srv, "b")
	for _, c := range []*Client{a, b} {
		if err := c.Arrive(ctx, "resume"); err != nil {
			t.Fatal(err)
		}
	}
	srv.Restart()

	c := newClient(t, srv, "c")
	d := newClient(t, srv, "d")
	got, err := d.Arrivals(ctx, "resume")
	if err != nil || !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Arrivals after restart: %v %v", err, got)
	}
	done := make(chan error, 1)
	go func() { done <- d.WaitCheckpoint(ctx, "resume", []string{"a", "b", "c", "d"}) }()
	if err := d.Arrive(ctx, "resume"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("waiter returned before c arrived: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := c.Arrive(ctx, "resume"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitCheckpoint: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter not released by the last arrival")
	}
}

// TestCheckpointReset: a reset removes every arrival; a waiter across the
// reset does not count the deleted arrivals (or their markers), and the name
// is reusable.
func TestCheckpointReset(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 30*time.Second)
	a := newClient(t, srv, "a")
	b := newClient(t, srv, "b")
	c := newClient(t, srv, "c")
	for _, cl := range []*Client{a, b} {
		if err := cl.Arrive(ctx, "round"); err != nil {
			t.Fatal(err)
		}
	}
	setDone := make(chan error, 1)
	go func() { setDone <- c.WaitCheckpoint(ctx, "round", []string{"a", "b", "c"}) }()
	countDone := make(chan error, 1)
	go func() {
		_, err := c.WaitCheckpointCount(ctx, "round", 3)
		countDone <- err
	}()
	time.Sleep(200 * time.Millisecond) // let the waiters see a and b
	if err := a.ResetCheckpoint(ctx, "round"); err != nil {
		t.Fatalf("ResetCheckpoint: %v", err)
	}
	got, err := a.Arrivals(ctx, "round")
	if err != nil || len(got) != 0 {
		t.Fatalf("Arrivals after reset: %v %v", err, got)
	}
	if err := c.Arrive(ctx, "round"); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []chan error{setDone, countDone} {
		select {
		case err := <-ch:
			t.Fatalf("waiter returned after reset with only c arrived: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
	}
	for _, cl := range []*Client{a, b} {
		if err := cl.Arrive(ctx, "round"); err != nil {
			t.Fatalf("arrive after reset: %v", err)
		}
	}
	for _, ch := range []chan error{setDone, countDone} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("waiter: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("waiter not released by the second round")
		}
	}
	if err := a.ResetCheckpoint(ctx, "never-used"); err != nil {
		t.Fatalf("reset of an unused checkpoint: %v", err)
	}
}

func TestCheckpointSkipsJunk(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	var logs syncBuffer
	a := newClient(t, srv, "a", WithLogger(zerolog.New(&logs)))
	if err := a.Arrive(ctx, "cp"); err != nil {
		t.Fatal(err)
	}
	kv, err := srv.JetStream(t).KeyValue(ctx, subjects.CheckpointsBucket)
	if err != nil {
		t.Fatal(err)
	}
	junk := map[string]string{
		"test.cp.mallory": "not json",
		"test.cp.eve":     `{"agent":"someone-else"}`,
		"test.cp.x=2":     `{"agent":"x"}`, // truncated escape
		"test.cp.=61":     `{"agent":"a"}`, // non-canonical spelling of "a"
	}
	for k, v := range junk {
		if _, err := kv.PutString(ctx, k, v); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	got, err := a.Arrivals(ctx, "cp")
	if err != nil || !slices.Equal(got, []string{"a"}) {
		t.Fatalf("Arrivals with junk: %v %v", err, got)
	}
	if n := strings.Count(logs.String(), "skipping unreadable checkpoint arrival"); n != len(junk) {
		t.Fatalf("%d log lines for %d junk arrivals:\n%s", n, len(junk), logs.String())
	}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := a.WaitCheckpointCount(wctx, "cp", 2); !errors.Is(err, ErrTimeout) {
		t.Fatalf("WaitCheckpointCount(2) with one real arrival and junk: %v", err)
	}
	// An agent whose own key holds junk still arrives: Arrive replaces it.
	if _, err := kv.PutString(ctx, "test.cp.b", "junk"); err != nil {
		t.Fatal(err)
	}
	b := newClient(t, srv, "b")
	if err := b.Arrive(ctx, "cp"); err != nil {
		t.Fatalf("Arrive over junk: %v", err)
	}
	got, err = a.Arrivals(ctx, "cp")
	if err != nil || !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Arrivals after arriving over junk: %v %v", err, got)
	}
	if err := a.ResetCheckpoint(ctx, "cp"); err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeysFiltered(ctx, "test.cp.*")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for k := range keys.Keys() {
		left = append(left, k)
	}
	if len(left) != 0 {
		t.Fatalf("keys left after reset: %v", left)
	}
}

func TestCheckpointBadInput(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	a := newClient(t, srv, "a")
	for _, name := range []string{"", "a b", "tab\there", "nul\x00", strings.Repeat("n", subjects.MaxNameBytes+1)} {
		if err := a.Arrive(ctx, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Arrive(%q): %v, want ErrInvalidName", name, err)
		}
		if _, err := a.Arrivals(ctx, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Arrivals(%q): %v", name, err)
		}
		if err := a.WaitCheckpoint(ctx, name, []string{"a"}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("WaitCheckpoint(%q): %v", name, err)
		}
		if _, err := a.WaitCheckpointCount(ctx, name, 1); !errors.Is(err, ErrInvalidName) {
			t.Errorf("WaitCheckpointCount(%q): %v", name, err)
		}
		if err := a.ResetCheckpoint(ctx, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ResetCheckpoint(%q): %v", name, err)
		}
	}
	if err := a.WaitCheckpoint(ctx, "cp", []string{"ok", "bad agent"}); !errors.Is(err, ErrInvalidAgent) {
		t.Errorf("WaitCheckpoint with an invalid agent: %v", err)
	}
	for _, n := range []int{0, -1} {
		if _, err := a.WaitCheckpointCount(ctx, "cp", n); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("WaitCheckpointCount(%d): %v", n, err)
		}
	}
	if err := a.WaitCheckpoint(ctx, "cp", nil); err != nil {
		t.Errorf("WaitCheckpoint with no agents: %v", err)
	}
}

// TestCheckpointWaitAcrossRestart: a waiter that is watching when the server
// restarts is still released by arrivals made after the restart.
func TestCheckpointWaitAcrossRestart(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 30*time.Second)
	a := newClient(t, srv, "a")
	b := newClient(t, srv, "b")
	if err := a.Arrive(ctx, "across"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.WaitCheckpoint(ctx, "across", []string{"a", "b"}) }()
	time.Sleep(200 * time.Millisecond)
	srv.Restart()
	start := time.Now()
	for {
		// A request sent as the server goes down is dropped unanswered:
		// each try gets its own short deadline (see afterRestart).
		err := afterRestart(ctx, func(ctx context.Context) error { return b.Arrive(ctx, "across") })
		if err == nil {
			t.Logf("arrived %v after the restart", time.Since(start))
			break
		}
		t.Logf("arrive: %v", err)
		if ctx.Err() != nil {
			t.Fatalf("arrive after restart: %v", err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitCheckpoint across restart: %v", err)
		}
		t.Logf("released %v after the arrival", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("waiter not released after the restart")
	}
}

// TestCheckpointSameAgentConcurrently: many clients of one agent arriving
// at once all succeed and leave one arrival.
func TestCheckpointSameAgentConcurrently(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	var wg sync.WaitGroup
	for range 8 {
		c := newClient(t, srv, "twin")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Arrive(ctx, "cp"); err != nil {
				t.Errorf("Arrive: %v", err)
			}
		}()
	}
	wg.Wait()
	// The bucket is fresh: exactly one write ever reached it.
	st, err := srv.JetStream(t).Stream(ctx, "KV_"+subjects.CheckpointsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if last := st.CachedInfo().State.LastSeq; last != 1 {
		t.Fatalf("%d writes to the checkpoint bucket, want 1", last)
	}
}
