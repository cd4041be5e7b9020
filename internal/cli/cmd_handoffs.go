package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/sidecar"
	"github.com/cogos-dev/coord/subjects"
)

func runHandoff(e *env, args []string) error {
	c := e.command("handoff")
	var claims listFlag
	c.fs.Var(&claims, "claims", "comma-separated paths whose claims go with the handoff")
	if err := e.parse(c, args, 3, 3); err != nil {
		return err
	}
	to, artifact, msg := c.pos[0], c.pos[1], c.pos[2]
	if err := subjects.ValidateAgent(to); err != nil {
		return usagef("TO: %v", err)
	}
	if artifact == "" {
		return usagef("handoff: empty ARTIFACT")
	}
	paths := make([]string, 0, len(claims))
	for _, p := range claims {
		clean, err := e.resolvePath(p)
		if err != nil {
			return err
		}
		paths = append(paths, clean)
	}
	b, err := e.open(e.ctx)
	if err != nil {
		return err
	}
	defer b.close()
	h, err := b.handoff(e.ctx, sidecar.HandoffRequest{To: to, Artifact: artifact, Message: msg, Claims: paths})
	if err != nil {
		return err
	}
	if e.g.json {
		return e.printJSON(h)
	}
	fmt.Fprintf(e.stdout, "handoff %s to %s (%s)", h.ID, h.To, h.Artifact)
	if len(h.Claims) > 0 {
		fmt.Fprintf(e.stdout, " with claims %s", strings.Join(h.Claims, ", "))
	}
	fmt.Fprintln(e.stdout)
	return nil
}

func runHandoffs(e *env, args []string) error {
	c := e.command("handoffs")
	if err := e.parse(c, args, 0, 0); err != nil {
		return err
	}
	b, err := e.open(e.ctx)
	if err != nil {
		return err
	}
	defer b.close()
	// "" asks for the requester's own: the sidecar's agent when no
	// --agent or $COG_AGENT_ID names one.
	list, err := b.handoffs(e.ctx, e.g.agent)
	if err != nil {
		return err
	}
	agent := e.g.agent
	if agent == "" {
		agent = "this agent"
	}
	if list == nil {
		list = []coord.Handoff{}
	}
	if e.g.json {
		return e.printJSON(list)
	}
	printHandoffs(e, agent, list)
	return nil
}

func printHandoffs(e *env, agent string, list []coord.Handoff) {
	if len(list) == 0 {
		fmt.Fprintf(e.stdout, "no pending handoffs for %s\n", agent)
		return
	}
	t := newTable(e.stdout, "ID", "FROM", "ARTIFACT", "SENT", "CLAIMS", "MESSAGE")
	for _, h := range list {
		t.row(h.ID, h.From, h.Artifact, ago(h.Timestamp), dash(strings.Join(h.Claims, ",")), dash(h.Message))
	}
	t.flush()
}

func runAccept(e *env, args []string) error {
	c := e.command("accept")
	if err := e.parse(c, args, 1, 1); err != nil {
		return err
	}
	b, err := e.open(e.ctx)
	if err != nil {
		return err
	}
	defer b.close()
	h, err := b.accept(e.ctx, c.pos[0])
	if err != nil {
		var ae *apiError
		if errors.Is(err, coord.ErrHandoffNotFound) || (errors.As(err, &ae) && ae.body.Code == sidecar.CodeNotFound) {
			return fmt.Errorf("no handoff %s (never sent, or aged out)", c.pos[0])
		}
		return err
	}
	if e.g.json {
		return e.printJSON(h)
	}
	fmt.Fprintf(e.stdout, "accepted %s from %s (%s)\n", h.ID, h.From, h.Artifact)
	if len(h.Claims) > 0 {
		moved := make([]string, 0, len(h.Claims))
		for _, p := range h.Claims {
			if !contains(h.NotTransferred, p) {
				moved = append(moved, p)
			}
		}
		if len(moved) > 0 {
			held := "kept alive by the sidecar"
			if b.viaSidecar() == "" {
				held = "not kept alive: no sidecar; they expire after their TTL"
			}
			fmt.Fprintf(e.stdout, "now holding %s (%s)\n", strings.Join(moved, ", "), held)
		}
		if len(h.NotTransferred) > 0 {
			fmt.Fprintf(e.stderr, "coord-agent: not transferred (the sender no longer held them): %s\n", strings.Join(h.NotTransferred, ", "))
		}
	}
	return nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func printStatusHandoffs(e *env, st *sidecar.Status) {
	fmt.Fprintf(e.stdout, "\npending handoffs for %s:\n", st.Agent)
	printHandoffs(e, st.Agent, st.Handoffs)
}
