package sidecar

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/coord"
)

// Status is what `coord-agent status` shows and GET /v1/status returns.
type Status struct {
	Agent     string       `json:"agent"`
	Namespace string       `json:"namespace"`
	Sidecar   *Info        `json:"sidecar,omitempty"`
	Server    ServerStatus `json:"server"`
	Stores    []Store      `json:"stores"`
	// Claims are this agent's claims in the namespace.
	Claims []coord.Claim `json:"claims"`
	// Held are the claims the sidecar keeps alive (all agents).
	Held []coord.Claim `json:"held,omitempty"`
	// Handoffs are this agent's pending handoffs.
	Handoffs []coord.Handoff `json:"handoffs"`
	// Errors are the parts of the status that could not be read.
	Errors []string `json:"errors,omitempty"`
}

// ServerStatus describes the NATS server the client is connected to.
type ServerStatus struct {
	URL        string   `json:"url"`
	Name       string   `json:"name"`
	ID         string   `json:"id"`
	Version    string   `json:"version"`
	Cluster    string   `json:"cluster,omitempty"`
	Peers      []string `json:"peers,omitempty"` // other servers known to the client
	RTT        string   `json:"rtt,omitempty"`
	JetStream  bool     `json:"jetstream"`
	JSDomain   string   `json:"jetstream_domain,omitempty"`
	JSMemory   uint64   `json:"jetstream_memory_bytes"`
	JSStorage  uint64   `json:"jetstream_storage_bytes"`
	JSStreams  int      `json:"jetstream_streams"`
	JSConsumer int      `json:"jetstream_consumers"`
}

// Store is one of coord's KV buckets or streams.
type Store struct {
	Name     string   `json:"name"`   // coord-claims, COORD_BROADCASTS
	Kind     string   `json:"kind"`   // kv | stream
	Stream   string   `json:"stream"` // KV_coord-claims, COORD_BROADCASTS
	Subjects []string `json:"subjects,omitempty"`
	Messages uint64   `json:"messages"`
	Bytes    uint64   `json:"bytes"`
	Replicas int      `json:"replicas"`
	Storage  string   `json:"storage"`
	Leader   string   `json:"leader,omitempty"`
	MaxAge   string   `json:"max_age,omitempty"`
}

// CollectStatus reads server, JetStream and store state through c, and
// c's agent's claims and pending handoffs.
func CollectStatus(ctx context.Context, c *coord.Client) (*Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc := c.Conn()
	st := &Status{
		Agent:     c.Agent(),
		Namespace: c.Namespace(),
		Server: ServerStatus{
			URL:     nc.ConnectedUrlRedacted(),
			Name:    nc.ConnectedServerName(),
			ID:      nc.ConnectedServerId(),
			Version: nc.ConnectedServerVersion(),
			Cluster: nc.ConnectedClusterName(),
			Peers:   nc.DiscoveredServers(),
		},
	}
	if rtt, err := nc.RTT(); err == nil {
		st.Server.RTT = rtt.String()
	}
	js := c.JetStream()
	if ai, err := js.AccountInfo(ctx); err == nil {
		st.Server.JetStream = true
		st.Server.JSDomain = ai.Domain
		st.Server.JSMemory = ai.Memory
		st.Server.JSStorage = ai.Store
		st.Server.JSStreams = ai.Streams
		st.Server.JSConsumer = ai.Consumers
	} else if !errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return nil, err
	}
	lister := js.ListStreams(ctx)
	for si := range lister.Info() {
		name := si.Config.Name
		s := Store{
			Stream:   name,
			Name:     name,
			Kind:     "stream",
			Subjects: si.Config.Subjects,
			Messages: si.State.Msgs,
			Bytes:    si.State.Bytes,
			Replicas: si.Config.Replicas,
			Storage:  si.Config.Storage.String(),
		}
		if si.Config.MaxAge > 0 {
			s.MaxAge = si.Config.MaxAge.String()
		}
		switch {
		case strings.HasPrefix(name, "KV_coord-"):
			s.Name, s.Kind, s.Subjects = strings.TrimPrefix(name, "KV_"), "kv", nil
		case strings.HasPrefix(name, "COORD_"):
		default:
			continue
		}
		if si.Cluster != nil {
			s.Leader = si.Cluster.Leader
		}
		st.Stores = append(st.Stores, s)
	}
	if err := lister.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return nil, err
	}
	sort.Slice(st.Stores, func(i, j int) bool { return st.Stores[i].Name < st.Stores[j].Name })
	all, err := c.List(ctx)
	if err != nil {
		return nil, err
	}
	st.Claims = filterClaims(all, c.Agent())
	// A handoff stream created a moment ago on a cluster may not answer
	// direct gets yet: report it rather than fail the whole status.
	if st.Handoffs, err = c.Handoffs(ctx, ""); err != nil {
		st.Errors = append(st.Errors, "handoffs: "+err.Error())
	}
	if st.Handoffs == nil {
		st.Handoffs = []coord.Handoff{}
	}
	return st, nil
}
