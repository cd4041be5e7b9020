package coord

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/kvstore"
)

// Clients made on one connection (WithConn: the sidecar's agents, many to a
// connection) share the claim buckets as provisioned: one set of bucket
// handles per connection and settings instead of one per client, and no
// provisioning round trips for the second client on. The entry goes when
// the last client using it closes, so a connection that outlives its
// clients keeps nothing.
type sharedKey struct {
	nc       *nats.Conn
	replicas int
	storage  jetstream.StorageType
}

type sharedBuckets struct {
	refs int // clients using the entry; guarded by sharedMu

	mu              sync.Mutex // serializes provisioning
	claims, waiters *kvstore.Bucket
}

var (
	sharedMu sync.Mutex
	shared   = make(map[sharedKey]*sharedBuckets)
)

// provisionShared sets the client's claim buckets from its connection's
// shared entry, provisioning them if it is the first.
func (c *Client) provisionShared(ctx context.Context) error {
	k := sharedKey{nc: c.nc, replicas: c.opts.replicas, storage: c.opts.storage}
	sharedMu.Lock()
	s := shared[k]
	if s == nil {
		s = &sharedBuckets{}
		shared[k] = s
	}
	s.refs++
	sharedMu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claims == nil {
		if err := c.provisionClaims(ctx); err != nil {
			releaseShared(k)
			return err
		}
		s.claims, s.waiters = c.claims, c.waiters
	}
	c.claims, c.waiters = s.claims, s.waiters
	c.shared = &k
	return nil
}

// releaseShared drops one client's use of the entry k.
func releaseShared(k sharedKey) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if s := shared[k]; s != nil {
		if s.refs--; s.refs <= 0 {
			delete(shared, k)
		}
	}
}
