package kvstore

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/testenv"
)

func TestEnsureBucket(t *testing.T) {
	srv := testenv.Start(t)
	js := srv.JetStream(t)
	ctx := testCtx(t)
	cfg := BucketConfig{Name: "prov", MarkerTTL: 2 * time.Second}

	b1, err := EnsureBucket(ctx, js, cfg)
	if err != nil {
		t.Fatalf("first EnsureBucket: %v", err)
	}
	rev, err := b1.Put(ctx, "k", []byte("v"), 0)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := EnsureBucket(ctx, js, cfg)
	if err != nil {
		t.Fatalf("second EnsureBucket (idempotent): %v", err)
	}
	if e, err := b2.Get(ctx, "k"); err != nil || e.Revision != rev {
		t.Fatalf("bucket re-opened lost its data: %+v, %v", e, err)
	}
	st, err := js.Stream(ctx, b1.Stream())
	if err != nil {
		t.Fatal(err)
	}
	got := st.CachedInfo().Config
	if !got.AllowMsgTTL || got.SubjectDeleteMarkerTTL != 2*time.Second || got.MaxMsgsPerSubject != 1 || got.Replicas != 1 {
		t.Fatalf("stream config: allow TTL %v, marker TTL %v, history %d, replicas %d; want true, 2s, 1, 1",
			got.AllowMsgTTL, got.SubjectDeleteMarkerTTL, got.MaxMsgsPerSubject, got.Replicas)
	}

	t.Run("drift", func(t *testing.T) {
		_, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: "drifted", History: 5, Storage: jetstream.MemoryStorage, LimitMarkerTTL: 3 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		b, err := EnsureBucket(ctx, js, BucketConfig{Name: "drifted", MarkerTTL: time.Second})
		var de *DriftError
		if !errors.Is(err, ErrConfigDrift) || !errors.As(err, &de) {
			t.Fatalf("EnsureBucket on a bucket with other settings: %v, want *DriftError", err)
		}
		if b == nil {
			t.Fatal("drift must still return the usable bucket")
		}
		settings := map[string]bool{}
		for _, d := range de.Drifts {
			settings[d.Setting] = true
		}
		for _, s := range []string{"history", "storage", "marker TTL"} {
			if !settings[s] {
				t.Errorf("drift %v does not report %s", de.Drifts, s)
			}
		}
		if settings["replicas"] {
			t.Errorf("drift %v reports replicas, which match", de.Drifts)
		}
		// Nothing was rewritten.
		kv, err := js.KeyValue(ctx, "drifted")
		if err != nil {
			t.Fatal(err)
		}
		status, err := kv.Status(ctx)
		if err != nil || status.History() != 5 {
			t.Fatalf("bucket history after EnsureBucket = %d, %v; want 5 (unchanged)", status.History(), err)
		}
		// Deletes use the bucket's own marker TTL, not the one asked for.
		if b.markerTTL != 3*time.Second {
			t.Errorf("bucket marker TTL %v, want the existing 3s", b.markerTTL)
		}
	})
	t.Run("no per-key TTL", func(t *testing.T) {
		if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "nottl"}); err != nil {
			t.Fatal(err)
		}
		b, err := EnsureBucket(ctx, js, BucketConfig{Name: "nottl", MarkerTTL: time.Second})
		if !errors.Is(err, ErrConfigDrift) || b != nil {
			t.Fatalf("EnsureBucket on a bucket without TTLs = %v, %v; want ErrConfigDrift and no bucket", b, err)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		if _, err := EnsureBucket(ctx, js, BucketConfig{MarkerTTL: time.Second}); err == nil {
			t.Error("empty name accepted")
		}
		if _, err := EnsureBucket(ctx, js, BucketConfig{Name: "x", MarkerTTL: 500 * time.Millisecond}); err == nil {
			t.Error("marker TTL under one second accepted")
		}
		if _, err := js.KeyValue(ctx, "x"); !errors.Is(err, jetstream.ErrBucketNotFound) {
			t.Errorf("a rejected config created the bucket: %v", err)
		}
	})
}

func TestEnsureStream(t *testing.T) {
	srv := testenv.Start(t)
	js := srv.JetStream(t)
	ctx := testCtx(t)
	cfg := jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, MaxAge: time.Hour, AllowMsgTTL: true}
	if _, err := EnsureStream(ctx, js, cfg); err != nil {
		t.Fatalf("first EnsureStream: %v", err)
	}
	if _, err := js.Publish(ctx, "s.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	st, err := EnsureStream(ctx, js, cfg)
	if err != nil {
		t.Fatalf("second EnsureStream (idempotent): %v", err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream re-opened: %v msgs, %v; want 1", info.State.Msgs, err)
	}
	other := cfg
	other.MaxAge = 2 * time.Hour
	other.Subjects = []string{"s.>", "t.>"}
	st, err = EnsureStream(ctx, js, other)
	var de *DriftError
	if !errors.Is(err, ErrConfigDrift) || !errors.As(err, &de) || st == nil {
		t.Fatalf("EnsureStream with other settings = %v; want *DriftError and the stream", err)
	}
	if len(de.Drifts) != 2 || de.Drifts[0].Setting != "subjects" || de.Drifts[1].Setting != "max age" {
		t.Fatalf("drifts = %v; want subjects and max age", de.Drifts)
	}
	info, err := st.Info(ctx)
	if err != nil || info.Config.MaxAge != time.Hour || len(info.Config.Subjects) != 1 {
		t.Fatalf("stream was rewritten: %+v, %v", info.Config, err)
	}
}
