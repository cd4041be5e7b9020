package coord

import (
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/kvstore"
)

// lazy holds a resource (bucket, stream) that is provisioned on first use,
// so that a client that only claims never creates the other primitives'
// storage. A failed provisioning is retried on the next use.
type lazy[T any] struct {
	mu sync.Mutex
	v  T
	ok bool
}

func (l *lazy[T]) get(provision func() (T, error)) (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ok {
		return l.v, nil
	}
	v, err := provision()
	if err != nil {
		return v, err
	}
	l.v, l.ok = v, true
	return v, nil
}

// lazyResources are the buckets and streams of the other primitives.
type lazyResources struct {
	checkpoints lazy[*kvstore.Bucket]
	broadcasts  lazy[jetstream.Stream]
	handoffs    lazy[jetstream.Stream]
}
