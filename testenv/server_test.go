package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestRestartKeepsDataAndPort(t *testing.T) {
	s := Start(t)
	url, dir := s.URL(), s.StoreDir()
	if s.NATS() == nil || dir == "" {
		t.Fatal("no running server or store dir")
	}
	js := s.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "keep"})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Put(ctx, "k", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	old := s.NATS()
	s.Restart()
	if s.URL() != url || s.StoreDir() != dir {
		t.Fatalf("after restart URL %s store %s; want %s %s", s.URL(), s.StoreDir(), url, dir)
	}
	if s.NATS() == old || !s.NATS().Running() {
		t.Fatal("restart did not start a new running server")
	}
	// The old connection reconnects to the same URL and reads the data back
	// (the first reads after the restart can go unanswered: getRetry).
	e, err := getRetry(t, kv, "k", 10*time.Second)
	if err != nil || e.Revision() != rev || string(e.Value()) != "v" {
		t.Fatalf("after restart Get = %v, %v; want v at %d", e, err, rev)
	}
}

func TestShutdownIdempotent(t *testing.T) {
	s := Start(t)
	nc := s.Connect(t)
	if !nc.IsConnected() {
		t.Fatal("not connected")
	}
	s.Shutdown()
	s.Shutdown()
	if s.NATS() != nil {
		t.Fatal("server still set after Shutdown")
	}
}
