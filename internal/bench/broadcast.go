package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/subjects"
)

// bcastMessage is a typical broadcast body.
var bcastMessage = strings.Repeat("m", 100)

// runPublish: agents publish to a channel, against raw js.Publish of the
// same size on the same stream.
func runPublish(ctx context.Context, e *env) ([]Result, error) {
	return eachSize(e.cfg.Agents, "agents", func(n int) (Result, error) { return publish(ctx, e, n) })
}

func publish(ctx context.Context, e *env, n int) (Result, error) {
	cs, err := e.clients(ctx, n, "p")
	if err != nil {
		return Result{}, err
	}
	defer closeAll(cs)
	jss, closeRaw, err := e.rawConns(n)
	if err != nil {
		return Result{}, err
	}
	defer closeRaw()
	channel := fmt.Sprintf("publish-%d", n)
	// The first publish creates the stream the floor writes to.
	if _, err := cs[0].Publish(ctx, channel, bcastMessage); err != nil {
		return Result{}, err
	}
	floorSubj, err := subjects.BroadcastSubject(e.ns, channel+"-floor")
	if err != nil {
		return Result{}, err
	}
	body := bytes.Repeat([]byte("b"), 200) // about coord's JSON envelope around bcastMessage
	coordOp := func(ctx context.Context, w int) error {
		_, err := cs[w].Publish(ctx, channel, bcastMessage)
		return err
	}
	floorOp := func(ctx context.Context, w int) error {
		_, err := jss[w].Publish(ctx, floorSubj, body)
		return err
	}
	r, err := compare(ctx, "broadcast-publish", fmt.Sprintf("%d agents", n), n, e.cfg.Duration,
		"js.Publish of the same size to the same stream, same concurrency", coordOp, floorOp)
	if err != nil {
		return Result{}, err
	}
	return r, nil
}

// runFanout: one channel, Subscribers live subscribers, FanoutMessages
// published; messages delivered per second and publish-to-delivery latency.
func runFanout(ctx context.Context, e *env) ([]Result, error) {
	s, m := e.cfg.Subscribers, e.cfg.FanoutMessages
	subs, err := e.clients(ctx, s, "s")
	if err != nil {
		return nil, err
	}
	defer closeAll(subs)
	pub, err := e.clients(ctx, 1, "pub")
	if err != nil {
		return nil, err
	}
	defer closeAll(pub)
	if _, err := pub[0].Publish(ctx, "fanout-setup", bcastMessage); err != nil {
		return nil, err
	}
	c, err := fanoutCoord(ctx, subs, pub[0], m)
	if err != nil {
		return nil, err
	}
	jss, closeRaw, err := e.rawConns(s + 1)
	if err != nil {
		return nil, err
	}
	defer closeRaw()
	f, err := fanoutFloor(ctx, e, jss, m)
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	r := Result{Scenario: "broadcast-fanout", Size: fmt.Sprintf("%d subscribers x %d msgs", s, m)}
	r.fill(c)
	r.setFloor("js.Publish + one ordered consumer per subscriber on the subject", f)
	r.Note = "ops/s is messages delivered per second over all subscribers; p50/p99 is publish-to-delivery"
	return []Result{r}, nil
}

// stamped is a message carrying its send time.
func stamped(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) + " " + bcastMessage }

func sentAt(msg []byte) (time.Time, error) {
	i := bytes.IndexByte(msg, ' ')
	if i < 0 {
		return time.Time{}, fmt.Errorf("message without a time stamp")
	}
	ns, err := strconv.ParseInt(string(msg[:i]), 10, 64)
	return time.Unix(0, ns), err
}

// publishAll publishes m stamped messages from 4 goroutines.
func publishAll(ctx context.Context, m int, pub func(ctx context.Context, msg string) error) error {
	return parallel(ctx, m, 4, func(ctx context.Context, _ int) error { return pub(ctx, stamped(time.Now())) })
}

func fanoutCoord(ctx context.Context, subs []*coord.Client, pub *coord.Client, m int) (stats, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	lats := make([][]time.Duration, len(subs))
	var wg sync.WaitGroup
	failed := make([]error, len(subs)) // per subscriber
	for i, c := range subs {
		sub, err := c.Subscribe(ctx, "fanout")
		if err != nil {
			return stats{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sub.Stop()
			for len(lats[i]) < m {
				b, ok := <-sub.C()
				if !ok {
					failed[i] = fmt.Errorf("subscriber %d: feed ended after %d of %d: %v", i, len(lats[i]), m, sub.Err())
					return
				}
				t, err := sentAt([]byte(b.Message))
				if err != nil {
					failed[i] = err
					return
				}
				lats[i] = append(lats[i], time.Since(t))
			}
		}()
	}
	start := time.Now()
	err := publishAll(ctx, m, func(ctx context.Context, msg string) error {
		_, err := pub.Publish(ctx, "fanout", msg)
		return err
	})
	if err != nil {
		cancel()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err != nil {
		return stats{}, err
	}
	if err := errors.Join(failed...); err != nil {
		return stats{}, err
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return summarize(all, elapsed), nil
}

// fanoutFloor: jss[0] publishes, jss[1:] each run an ordered consumer.
func fanoutFloor(ctx context.Context, e *env, jss []jetstream.JetStream, m int) (stats, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	subj, err := subjects.BroadcastSubject(e.ns, "fanout-floor")
	if err != nil {
		return stats{}, err
	}
	subs := jss[1:]
	lats := make([][]time.Duration, len(subs))
	var wg sync.WaitGroup
	failed := make([]error, len(subs)) // per subscriber
	for i, js := range subs {
		st, err := js.Stream(ctx, subjects.BroadcastStream)
		if err != nil {
			return stats{}, err
		}
		oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{subj}, DeliverPolicy: jetstream.DeliverNewPolicy,
		})
		if err != nil {
			return stats{}, err
		}
		it, err := oc.Messages(jetstream.PullMaxMessages(256))
		if err != nil {
			return stats{}, err
		}
		// Next blocks until a message arrives or the iterator stops: stop
		// it when the run ends (in time or not).
		context.AfterFunc(ctx, it.Stop)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer it.Stop()
			for len(lats[i]) < m {
				msg, err := it.Next()
				if err != nil {
					failed[i] = fmt.Errorf("floor subscriber %d: %w", i, err)
					return
				}
				t, err := sentAt(msg.Data())
				if err != nil {
					failed[i] = err
					return
				}
				lats[i] = append(lats[i], time.Since(t))
			}
		}()
	}
	start := time.Now()
	err = publishAll(ctx, m, func(ctx context.Context, msg string) error {
		_, err := jss[0].Publish(ctx, subj, []byte(msg))
		return err
	})
	if err != nil {
		cancel() // stops the iterators, which ends the readers
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err != nil {
		return stats{}, err
	}
	if err := errors.Join(failed...); err != nil {
		return stats{}, err
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return summarize(all, elapsed), nil
}
