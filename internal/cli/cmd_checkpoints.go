package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/sidecar"
	"github.com/cogos-dev/coord/subjects"
)

func runCheckpoint(e *env, args []string) error {
	c := e.command("checkpoint")
	if err := e.parse(c, args, 1, 1); err != nil {
		return err
	}
	name := c.pos[0]
	if err := subjects.ValidateName(name); err != nil {
		return usagef("%v", err)
	}
	b, err := e.open(e.ctx)
	if err != nil {
		return err
	}
	defer b.close()
	r, err := b.arrive(e.ctx, name)
	if err != nil {
		return err
	}
	if e.g.json {
		return e.printJSON(r)
	}
	fmt.Fprintf(e.stdout, "%s arrived at %s (arrived: %s)\n", r.Agent, r.Name, strings.Join(r.Arrived, ", "))
	return nil
}

func runWait(e *env, args []string) error {
	c := e.command("wait")
	var agents listFlag
	var timeout durationFlag
	c.fs.Var(&agents, "agents", "comma-separated agents that must all arrive")
	count := c.fs.Int("count", 0, "number of agents (any) that must arrive")
	c.fs.Var(&timeout, "timeout", "give up after this long (exit 1 naming who is missing); default: wait forever")
	if err := e.parse(c, args, 1, 1); err != nil {
		return err
	}
	name := c.pos[0]
	if err := subjects.ValidateName(name); err != nil {
		return usagef("%v", err)
	}
	switch {
	case len(agents) > 0 && *count != 0:
		return usagef("wait: give --agents or --count, not both")
	case len(agents) == 0 && *count == 0:
		return usagef("wait: give --agents A,B,C or --count N")
	case *count < 0:
		return usagef("wait: --count %d: want a positive number", *count)
	}
	for _, a := range agents {
		if err := subjects.ValidateAgent(a); err != nil {
			return usagef("--agents: %v", err)
		}
	}
	b, err := e.open(e.ctx)
	if err != nil {
		return err
	}
	defer b.close()
	r, err := b.wait(e.ctx, name, agents, *count, timeout.d)
	if err != nil {
		return waitError(name, err)
	}
	if e.g.json {
		return e.printJSON(r)
	}
	fmt.Fprintf(e.stdout, "checkpoint %s reached (arrived: %s)\n", r.Name, strings.Join(r.Arrived, ", "))
	return nil
}

// waitError names the missing agents of a timed-out wait.
func waitError(name string, err error) error {
	var missing, arrived []string
	var ae *apiError
	var ct *coord.CheckpointTimeoutError
	switch {
	case errors.As(err, &ae) && ae.body.Code == sidecar.CodeTimeout:
		missing, arrived = ae.body.Missing, ae.body.Arrived
	case errors.As(err, &ct):
		missing, arrived = ct.Missing, ct.Arrived
	default:
		return err
	}
	got := "none"
	if len(arrived) > 0 {
		got = strings.Join(arrived, ", ")
	}
	if len(missing) == 0 {
		return fmt.Errorf("checkpoint %s timed out (arrived: %s)", name, got)
	}
	return fmt.Errorf("checkpoint %s timed out; missing: %s (arrived: %s)", name, strings.Join(missing, ", "), got)
}
