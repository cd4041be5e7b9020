package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/sidecar"
)

func runClaim(e *env, args []string) error {
	c := e.command("claim")
	reason := c.fs.String("reason", "", "why the path is claimed")
	var ttl, timeout durationFlag
	c.fs.Var(&ttl, "ttl", "lease (whole seconds, 1s to 24h; default the sidecar's, 30s)")
	wait := c.fs.Bool("wait", false, "wait while another agent holds PATH")
	c.fs.Var(&timeout, "timeout", "with --wait: give up after this long (exit 1)")
	if err := e.parse(c, args, 1, 1); err != nil {
		return err
	}
	if ttl.set && (ttl.d < coord.MinClaimTTL || ttl.d > coord.MaxClaimTTL) {
		return usagef("--ttl %v: want %v to %v", ttl.d, coord.MinClaimTTL, coord.MaxClaimTTL)
	}
	if timeout.set && !*wait {
		return usagef("--timeout needs --wait")
	}
	p, err := e.resolvePath(c.pos[0])
	if err != nil {
		return err
	}
	b, err := e.open(e.ctx)
	if err != nil {
		return err
	}
	defer b.close()
	cl, err := b.claim(e.ctx, claimArgs{path: p, reason: *reason, ttl: ttl.d, timeout: timeout.d, wait: *wait})
	if err != nil {
		err = claimError(p, err)
		if errors.Is(err, errWaitTimedOut) {
			if cur, oerr := b.owner(e.ctx, p); oerr == nil {
				return fmt.Errorf("timed out waiting for %s: still claimed by %s", p, cur.Agent)
			}
		}
		return err
	}
	if b.viaSidecar() == "" {
		fmt.Fprintf(e.stderr, "coord-agent: no sidecar serves this agent: the claim on %s is not kept alive and expires at %s (TTL %s) unless claimed again; it is not released when this command exits (run `coord-agent serve` to keep claims alive)\n",
			cl.Path, cl.ExpiresAt.Local().Format(time.TimeOnly), cl.TTL())
	}
	if e.g.json {
		return e.printJSON(cl)
	}
	holder := "not kept alive"
	if s := b.viaSidecar(); s != "" {
		holder = "kept alive by the sidecar at " + s
	}
	fmt.Fprintf(e.stdout, "claimed %s for %s (token %d, ttl %s, %s)\n", cl.Path, cl.Agent, cl.Token, cl.TTL(), holder)
	return nil
}

// errWaitTimedOut: claim --wait ran out of time.
var errWaitTimedOut = errors.New("timed out waiting")

// claimError names the owner on a refused claim.
func claimError(p string, err error) error {
	var ae *apiError
	if errors.As(err, &ae) {
		switch ae.body.Code {
		case sidecar.CodeClaimed:
			return fmt.Errorf("%s is claimed by %s", p, ae.body.Owner)
		case sidecar.CodeTimeout:
			return fmt.Errorf("%w for %s", errWaitTimedOut, p)
		}
	}
	var ce *coord.ClaimedError
	if errors.As(err, &ce) {
		return fmt.Errorf("%s is claimed by %s", p, ce.Owner)
	}
	if errors.Is(err, coord.ErrTimeout) {
		return fmt.Errorf("%w for %s", errWaitTimedOut, p)
	}
	return err
}

func runRelease(e *env, args []string) error {
	c := e.command("release")
	if err := e.parse(c, args, 1, 1); err != nil {
		return err
	}
	p, err := e.resolvePath(c.pos[0])
	if err != nil {
		return err
	}
	b, err := e.open(e.ctx)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.release(e.ctx, p); err != nil {
		return err
	}
	if e.g.json {
		return e.printJSON(sidecar.ReleaseResponse{Path: p, Released: true})
	}
	fmt.Fprintf(e.stdout, "released %s\n", p)
	return nil
}

func runOwner(e *env, args []string) error {
	c := e.command("owner")
	if err := e.parse(c, args, 1, 1); err != nil {
		return err
	}
	p, err := e.resolvePath(c.pos[0])
	if err != nil {
		return err
	}
	b, err := e.open(e.ctx)
	if err != nil {
		return err
	}
	defer b.close()
	cl, err := b.owner(e.ctx, p)
	if err != nil {
		var ae *apiError
		if errors.Is(err, coord.ErrNotClaimed) || (errors.As(err, &ae) && ae.body.Code == sidecar.CodeNotClaimed) {
			return fmt.Errorf("%s is not claimed", p)
		}
		return err
	}
	if e.g.json {
		return e.printJSON(cl)
	}
	fmt.Fprintln(e.stdout, cl.Agent)
	return nil
}

func runClaims(e *env, args []string) error {
	c := e.command("claims")
	if err := e.parse(c, args, 0, 0); err != nil {
		return err
	}
	b, err := e.open(e.ctx)
	if err != nil {
		return err
	}
	defer b.close()
	all, err := b.claims(e.ctx)
	if err != nil {
		return err
	}
	if all == nil {
		all = []coord.Claim{}
	}
	if e.g.json {
		return e.printJSON(all)
	}
	printClaims(e, all)
	return nil
}

func printClaims(e *env, all []coord.Claim) {
	if len(all) == 0 {
		fmt.Fprintln(e.stdout, "no claims")
		return
	}
	t := newTable(e.stdout, "PATH", "AGENT", "TOKEN", "CLAIMED", "EXPIRES", "REASON")
	for _, cl := range all {
		t.row(cl.Path, cl.Agent, cl.Token, ago(cl.ClaimedAt), ago(cl.ExpiresAt), dash(cl.Reason))
	}
	t.flush()
}
