package cli

import (
	"fmt"
	"strings"
)

func runStatus(e *env, args []string) error {
	c := e.command("status")
	if err := e.parse(c, args, 0, 0); err != nil {
		return err
	}
	b, err := e.open(e.ctx)
	if err != nil {
		return err
	}
	defer b.close()
	st, err := b.status(e.ctx)
	if err != nil {
		return err
	}
	if e.g.json {
		return e.printJSON(st)
	}
	w := e.stdout
	fmt.Fprintf(w, "agent:      %s (namespace %s)\n", st.Agent, st.Namespace)
	if sc := st.Sidecar; sc != nil {
		fmt.Fprintf(w, "sidecar:    %s (pid %d, %s, data %s, keeping %d claims alive)\n", sc.HTTP, sc.PID, sc.Mode, sc.DataDir, len(st.Held))
	} else {
		fmt.Fprintf(w, "sidecar:    none (direct connection)\n")
	}
	srv := st.Server
	fmt.Fprintf(w, "server:     %s %s (nats-server %s, rtt %s)\n", dash(srv.Name), srv.URL, srv.Version, dash(srv.RTT))
	cluster := "none (single server)"
	if srv.Cluster != "" {
		cluster = srv.Cluster
		if len(srv.Peers) > 0 {
			cluster += " (peers " + strings.Join(srv.Peers, ", ") + ")"
		}
	}
	fmt.Fprintf(w, "cluster:    %s\n", cluster)
	fmt.Fprintf(w, "jetstream:  %v (%d streams, %d consumers, %d bytes stored)\n\n", srv.JetStream, srv.JSStreams, srv.JSConsumer, srv.JSStorage)
	if len(st.Stores) == 0 {
		fmt.Fprintln(w, "no coord buckets or streams yet")
	} else {
		t := newTable(w, "STORE", "KIND", "MESSAGES", "BYTES", "REPLICAS", "STORAGE", "LEADER")
		for _, s := range st.Stores {
			t.row(s.Name, s.Kind, s.Messages, s.Bytes, s.Replicas, s.Storage, dash(s.Leader))
		}
		t.flush()
	}
	fmt.Fprintf(w, "\nclaims of %s:\n", st.Agent)
	printClaims(e, st.Claims)
	printStatusHandoffs(e, st)
	for _, msg := range st.Errors {
		fmt.Fprintf(e.stderr, "coord-agent: status: %s\n", msg)
	}
	return nil
}
