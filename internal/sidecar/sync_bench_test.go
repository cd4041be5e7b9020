package sidecar

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/coord/embedded"
)

// BenchmarkClaimReleaseSync measures what sync_interval: always costs a
// claim: one TryAcquire + Release on a file-store server, fsync on every
// write or not (the server default, every 2 minutes).
func BenchmarkClaimReleaseSync(b *testing.B) {
	for _, always := range []bool{false, true} {
		b.Run(fmt.Sprintf("sync_always=%v", always), func(b *testing.B) {
			opts, err := embedded.Options(embedded.Config{
				StoreDir: filepath.Join(b.TempDir(), "js"), Port: server.RANDOM_PORT, SyncAlways: always,
			})
			if err != nil {
				b.Fatal(err)
			}
			srv, err := embedded.Start(opts, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Shutdown()
			ctx := context.Background()
			c, err := coord.Connect(ctx, srv.ClientURL(), coord.WithAgent("bench"))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			i := 0
			for b.Loop() {
				cl, err := c.TryAcquire(ctx, fmt.Sprintf("p/%d", i%64))
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Release(ctx, cl); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
