package coord

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cogos-dev/coord/subjects"
	"github.com/cogos-dev/coord/testenv"
)

func TestBroadcastPublishAndList(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	b := newClient(t, srv, "bob")
	other := newClient(t, srv, "carol", WithNamespace("elsewhere"))
	ctx := testCtx(t, 20*time.Second)

	var sent []Broadcast
	for i, c := range []*Client{a, b, a} {
		m, err := c.Publish(ctx, "general", fmt.Sprintf("hello %d", i))
		if err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
		if m.Seq == 0 || m.Channel != "general" || m.Agent != c.Agent() || m.Timestamp.IsZero() {
			t.Fatalf("Publish %d returned %+v", i, m)
		}
		sent = append(sent, m)
	}
	if _, err := a.Publish(ctx, "random", "elsewhere"); err != nil {
		t.Fatalf("Publish random: %v", err)
	}
	if _, err := other.Publish(ctx, "general", "other namespace"); err != nil {
		t.Fatalf("Publish other namespace: %v", err)
	}

	for _, since := range []time.Duration{0, time.Hour} {
		got, err := b.Broadcasts(ctx, "general", since)
		if err != nil {
			t.Fatalf("Broadcasts(since %v): %v", since, err)
		}
		if len(got) != len(sent) {
			t.Fatalf("Broadcasts(since %v): got %d messages %+v, want %d", since, len(got), got, len(sent))
		}
		for i := range sent {
			if !got[i].Timestamp.Equal(sent[i].Timestamp) {
				t.Errorf("message %d timestamp: got %v, want %v", i, got[i].Timestamp, sent[i].Timestamp)
			}
			got[i].Timestamp = sent[i].Timestamp
			if got[i] != sent[i] {
				t.Errorf("message %d: got %+v, want %+v", i, got[i], sent[i])
			}
		}
	}
	empty, err := a.Broadcasts(ctx, "nobody-here", 0)
	if err != nil || len(empty) != 0 {
		t.Fatalf("Broadcasts of an unused channel: %v %+v", err, empty)
	}
	// A window that ends before the messages were sent holds none of them.
	time.Sleep(1100 * time.Millisecond)
	recent, err := a.Broadcasts(ctx, "general", time.Second)
	if err != nil || len(recent) != 0 {
		t.Fatalf("Broadcasts(since 1s) after 1.1s: %v, %d messages", err, len(recent))
	}
	m, err := a.Publish(ctx, "general", "late")
	if err != nil {
		t.Fatal(err)
	}
	recent, err = a.Broadcasts(ctx, "general", time.Second)
	if err != nil || len(recent) != 1 || recent[0].Seq != m.Seq {
		t.Fatalf("Broadcasts(since 1s): %v %+v, want only seq %d", err, recent, m.Seq)
	}
}

// TestBroadcastBurst: 5 publishers x 200 messages on one channel, with 10
// live subscribers: the listing and every subscriber see all 1,000, in stream
// order, none twice, though many share a second.
func TestBroadcastBurst(t *testing.T) {
	const pubs, per, subs = 5, 200, 10
	srv := testenv.Start(t)
	ctx := testCtx(t, 60*time.Second)

	var subscriptions []*Subscription
	for i := range subs {
		c := newClient(t, srv, fmt.Sprintf("sub%d", i))
		s, err := c.Subscribe(ctx, "burst")
		if err != nil {
			t.Fatalf("Subscribe %d: %v", i, err)
		}
		subscriptions = append(subscriptions, s)
	}
	received := make([][]Broadcast, subs)
	var recvWG sync.WaitGroup
	for i, s := range subscriptions {
		recvWG.Add(1)
		go func() {
			defer recvWG.Done()
			for m := range s.C() {
				received[i] = append(received[i], m)
				if len(received[i]) == pubs*per {
					return
				}
			}
		}()
	}

	clients := make([]*Client, pubs)
	for p := range pubs {
		clients[p] = newClient(t, srv, fmt.Sprintf("pub%d", p))
	}
	start := time.Now()
	var wg sync.WaitGroup
	for p, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if _, err := c.Publish(ctx, "burst", fmt.Sprintf("%d:%d", p, i)); err != nil {
					t.Errorf("publisher %d message %d: %v", p, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("1,000 acknowledged publishes took %v", time.Since(start))

	list, err := clients[0].Broadcasts(ctx, "burst", time.Hour)
	if err != nil {
		t.Fatalf("Broadcasts: %v", err)
	}
	checkBurst(t, "listing", list, pubs, per)
	perSecond := map[int64]int{}
	busiest := 0
	for _, m := range list {
		perSecond[m.Timestamp.Unix()]++
		busiest = max(busiest, perSecond[m.Timestamp.Unix()])
	}
	// The seed named files by the second and lost all but one message per
	// second and agent; here hundreds share a second (1,000 in about 1-2 s).
	if busiest < 100 {
		t.Errorf("at most %d messages shared a second; the burst test proves little", busiest)
	}
	t.Logf("up to %d messages in one second", busiest)

	done := make(chan struct{})
	go func() { recvWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("subscribers did not receive all messages in time")
	}
	for i := range subs {
		checkBurst(t, fmt.Sprintf("subscriber %d", i), received[i], pubs, per)
		for j := range list {
			if received[i][j].Seq != list[j].Seq {
				t.Fatalf("subscriber %d message %d: seq %d, listing has %d", i, j, received[i][j].Seq, list[j].Seq)
			}
		}
	}
}

// checkBurst asserts msgs holds each publisher's messages exactly once, in
// increasing stream order and in each publisher's own order.
func checkBurst(t *testing.T, who string, msgs []Broadcast, pubs, per int) {
	t.Helper()
	if len(msgs) != pubs*per {
		t.Fatalf("%s: got %d messages, want %d", who, len(msgs), pubs*per)
	}
	seen := map[string]bool{}
	next := make([]int, pubs)
	var last uint64
	for _, m := range msgs {
		if m.Seq <= last {
			t.Fatalf("%s: seq %d after %d", who, m.Seq, last)
		}
		last = m.Seq
		if seen[m.Message] {
			t.Fatalf("%s: %q twice", who, m.Message)
		}
		seen[m.Message] = true
		var p, i int
		if _, err := fmt.Sscanf(m.Message, "%d:%d", &p, &i); err != nil || p < 0 || p >= pubs {
			t.Fatalf("%s: unexpected message %q", who, m.Message)
		}
		if i != next[p] || m.Agent != fmt.Sprintf("pub%d", p) {
			t.Fatalf("%s: publisher %d message %d (agent %s), want message %d", who, p, i, m.Agent, next[p])
		}
		next[p]++
	}
}

func TestSubscribeLiveOnlyAndEnds(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	ctx := testCtx(t, 20*time.Second)
	if _, err := a.Publish(ctx, "news", "before"); err != nil {
		t.Fatal(err)
	}

	subCtx, cancel := context.WithCancel(ctx)
	s, err := a.Subscribe(subCtx, "news")
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	want, err := a.Publish(ctx, "news", "after")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-s.C():
		if m.Seq != want.Seq || m.Message != "after" {
			t.Fatalf("first live message: got %+v, want %+v", m, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no live message")
	}
	if s.Err() != nil {
		t.Fatalf("Err while open: %v", s.Err())
	}
	cancel()
	waitClosed(t, s)
	if err := s.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err after cancel: %v, want context.Canceled", err)
	}

	// Stop: a clean end, Err nil.
	s2, err := a.Subscribe(ctx, "news")
	if err != nil {
		t.Fatal(err)
	}
	s2.Stop()
	s2.Stop()
	waitClosed(t, s2)
	if err := s2.Err(); err != nil {
		t.Fatalf("Err after Stop: %v", err)
	}

	// Client closed.
	b := newClient(t, srv, "bob")
	s3, err := b.Subscribe(ctx, "news")
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	// Close waits for the feed's goroutine: C is already closed.
	select {
	case _, open := <-s3.C():
		if open {
			t.Fatal("message on a subscription of a closed client")
		}
	default:
		t.Fatal("C still open after Close returned")
	}
	if err := s3.Err(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Err after Close: %v, want ErrClosed", err)
	}
	if _, err := b.Subscribe(ctx, "news"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe on a closed client: %v", err)
	}

	// Connection closed under the client.
	nc := srv.Connect(t)
	c, err := New(ctx, WithConn(nc), WithAgent("carol"), WithNamespace("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s4, err := c.Subscribe(ctx, "news")
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	waitClosed(t, s4)
	if err := s4.Err(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Err after the connection closed: %v, want ErrUnavailable", err)
	}
}

// waitClosed waits for a subscription's channel to close.
func waitClosed(t *testing.T, s *Subscription) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, open := <-s.C():
			if !open {
				return
			}
		case <-timeout:
			t.Fatal("subscription channel not closed")
		}
	}
}

// TestSubscribeSurvivesRestart: a live feed resumes after a server restart
// and delivers what was published while it was down once it is back.
func TestSubscribeSurvivesRestart(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	ctx := testCtx(t, 30*time.Second)
	s, err := a.Subscribe(ctx, "news")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Publish(ctx, "news", "one"); err != nil {
		t.Fatal(err)
	}
	if m := <-s.C(); m.Message != "one" {
		t.Fatalf("got %+v", m)
	}
	srv.Restart()
	var two Broadcast
	for two.Seq == 0 {
		err = afterRestart(ctx, func(ctx context.Context) (err error) { two, err = a.Publish(ctx, "news", "two"); return err })
		if err != nil && ctx.Err() != nil {
			t.Fatalf("publish after restart: %v", err)
		}
	}
	select {
	case m := <-s.C():
		if m.Seq != two.Seq {
			t.Fatalf("after restart got %+v, want %+v", m, two)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no message after restart (Err %v)", s.Err())
	}
}

// syncBuffer is a log sink safe for the client's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestBroadcastSkipsJunk(t *testing.T) {
	srv := testenv.Start(t)
	var logs syncBuffer
	a := newClient(t, srv, "alice", WithLogger(zerolog.New(&logs)))
	ctx := testCtx(t, 20*time.Second)
	s, err := a.Subscribe(ctx, "news")
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := subjects.BroadcastSubject("test", "news")
	js := srv.JetStream(t)
	for _, junk := range []string{"not json", `{"agent":"x"}`, `{}`} {
		if _, err := js.Publish(ctx, subj, []byte(junk)); err != nil {
			t.Fatal(err)
		}
	}
	good, err := a.Publish(ctx, "news", "good")
	if err != nil {
		t.Fatal(err)
	}
	list, err := a.Broadcasts(ctx, "news", 0)
	if err != nil || len(list) != 1 || list[0].Seq != good.Seq {
		t.Fatalf("Broadcasts with junk: %v %+v", err, list)
	}
	select {
	case m := <-s.C():
		if m.Seq != good.Seq {
			t.Fatalf("subscriber got %+v, want the good message", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("subscriber got nothing (Err %v)", s.Err())
	}
	if n := strings.Count(logs.String(), "skipping unreadable broadcast"); n != 6 {
		t.Fatalf("%d log lines for 3 junk messages read twice, want 6:\n%s", n, logs.String())
	}
}

// TestBroadcastStreamLimits: a stream created by an operator with other
// settings is used as it is (drift logged), and its max message size is
// reported as ErrMessageTooLarge with nothing stored.
func TestBroadcastStreamLimits(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	js := srv.JetStream(t)
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       subjects.BroadcastStream,
		Subjects:   []string{subjects.BroadcastPrefix + ".>"},
		MaxAge:     time.Hour,
		MaxMsgSize: 1024,
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	a := newClient(t, srv, "alice", WithLogger(zerolog.New(&logs)))
	kept, err := a.Publish(ctx, "general", "small")
	if err != nil {
		t.Fatalf("Publish on a drifted stream: %v", err)
	}
	if !strings.Contains(logs.String(), "max age") {
		t.Errorf("drift not logged: %s", logs.String())
	}
	if _, err := a.Publish(ctx, "general", strings.Repeat("x", 2000)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("Publish over the stream's max message size: %v, want ErrMessageTooLarge", err)
	}
	list, err := a.Broadcasts(ctx, "general", 0)
	if err != nil || len(list) != 1 || list[0].Seq != kept.Seq {
		t.Fatalf("listing: %v %+v", err, list)
	}
}

// TestBroadcastsWhilePublishing: a listing taken while a publisher keeps
// going ends, holds everything published before it began, in order.
func TestBroadcastsWhilePublishing(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	p := newClient(t, srv, "pub")
	ctx := testCtx(t, 30*time.Second)
	var before []Broadcast
	for i := range 50 {
		m, err := p.Publish(ctx, "busy", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, m)
	}
	pubCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; pubCtx.Err() == nil; i++ {
			if _, err := p.Publish(pubCtx, "busy", fmt.Sprint("more ", i)); err != nil && pubCtx.Err() == nil {
				t.Errorf("publish: %v", err)
				return
			}
		}
	}()
	defer func() { stop(); wg.Wait() }()
	for range 5 {
		list, err := a.Broadcasts(ctx, "busy", 0)
		if err != nil {
			t.Fatalf("Broadcasts while publishing: %v", err)
		}
		if len(list) < len(before) {
			t.Fatalf("listing has %d messages, want at least %d", len(list), len(before))
		}
		for i, m := range before {
			if list[i].Seq != m.Seq {
				t.Fatalf("message %d: seq %d, want %d", i, list[i].Seq, m.Seq)
			}
		}
		for i := 1; i < len(list); i++ {
			if list[i].Seq <= list[i-1].Seq {
				t.Fatalf("out of order at %d", i)
			}
		}
	}
}

func TestBroadcastBadInput(t *testing.T) {
	const maxPayload = 16 << 10
	srv := testenv.Start(t, testenv.WithOptions(func(o *server.Options) { o.MaxPayload = maxPayload }))
	a := newClient(t, srv, "alice")
	ctx := testCtx(t, 20*time.Second)
	before, err := a.Publish(ctx, "general", "kept")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, channel, message string
		want                   error
	}{
		{"empty channel", "", "hi", ErrInvalidChannel},
		{"channel with space", "a b", "hi", ErrInvalidChannel},
		{"channel with NUL", "a\x00b", "hi", ErrInvalidChannel},
		{"channel too long", strings.Repeat("c", subjects.MaxNameBytes+1), "hi", ErrInvalidChannel},
		{"empty message", "general", "", ErrEmptyMessage},
		{"not UTF-8", "general", "bad \xff byte", ErrInvalidMessage},
		{"over MaxMessageBytes", "general", strings.Repeat("x", MaxMessageBytes+1), ErrMessageTooLarge},
		{"over the server's max payload", "general", strings.Repeat("x", maxPayload+1), ErrMessageTooLarge},
		{"escaping pushes it over max payload", "general", strings.Repeat("<", maxPayload/3), ErrMessageTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Publish(ctx, tc.channel, tc.message)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Publish: got %v, want %v", err, tc.want)
			}
			if errors.Is(tc.want, ErrInvalidChannel) {
				if _, err := a.Broadcasts(ctx, tc.channel, 0); !errors.Is(err, ErrInvalidChannel) {
					t.Errorf("Broadcasts: got %v, want ErrInvalidChannel", err)
				}
				if _, err := a.Subscribe(ctx, tc.channel); !errors.Is(err, ErrInvalidChannel) {
					t.Errorf("Subscribe: got %v, want ErrInvalidChannel", err)
				}
			}
		})
	}
	list, err := a.Broadcasts(ctx, "general", 0)
	if err != nil || len(list) != 1 || list[0].Seq != before.Seq {
		t.Fatalf("listing after refused publishes: %v %+v, want only seq %d", err, list, before.Seq)
	}
	// The connection survived the refusals.
	if _, err := a.Publish(ctx, "general", "still works"); err != nil {
		t.Fatalf("Publish after refusals: %v", err)
	}
}

// TestBroadcastChannelsIsolated: channels whose names look like wildcards or
// hold dots, and other namespaces, never see each other's messages, in
// listings or live.
func TestBroadcastChannelsIsolated(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	other := newClient(t, srv, "alice", WithNamespace("test.other"))
	ctx := testCtx(t, 20*time.Second)
	channels := []string{"a", "a.b", "*", ">", "a=2Eb", "ünï"}
	subs := map[string]*Subscription{}
	for _, ch := range channels {
		s, err := a.Subscribe(ctx, ch)
		if err != nil {
			t.Fatalf("Subscribe(%q): %v", ch, err)
		}
		subs[ch] = s
	}
	for _, ch := range channels {
		if _, err := other.Publish(ctx, ch, "other namespace "+ch); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Publish(ctx, ch, "to "+ch); err != nil {
			t.Fatalf("Publish(%q): %v", ch, err)
		}
	}
	for _, ch := range channels {
		list, err := a.Broadcasts(ctx, ch, 0)
		if err != nil || len(list) != 1 || list[0].Message != "to "+ch || list[0].Channel != ch {
			t.Errorf("Broadcasts(%q): %v %+v", ch, err, list)
		}
		select {
		case m := <-subs[ch].C():
			if m.Message != "to "+ch {
				t.Errorf("subscriber of %q got %+v", ch, m)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("subscriber of %q got nothing", ch)
		}
	}
	// Nothing else arrives on any feed.
	for ch, s := range subs {
		select {
		case m := <-s.C():
			t.Errorf("subscriber of %q also got %+v", ch, m)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestBroadcastLargestMessage: a message of MaxMessageBytes that JSON has to
// escape throughout (six times larger stored) is stored, listed and fed
// intact.
func TestBroadcastLargestMessage(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	ctx := testCtx(t, 20*time.Second)
	s, err := a.Subscribe(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	msg := strings.Repeat("<", MaxMessageBytes)
	for range 3 {
		if _, err := a.Publish(ctx, "big", msg); err != nil {
			t.Fatalf("Publish of %d bytes: %v", len(msg), err)
		}
	}
	list, err := a.Broadcasts(ctx, "big", 0)
	if err != nil || len(list) != 3 || list[2].Message != msg {
		t.Fatalf("Broadcasts: %v, %d messages", err, len(list))
	}
	for range 3 {
		select {
		case m := <-s.C():
			if m.Message != msg {
				t.Fatalf("feed got a %d-byte message, want %d", len(m.Message), len(msg))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("feed stalled (Err %v)", s.Err())
		}
	}
}
