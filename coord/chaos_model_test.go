package coord

import (
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/anishathalye/porcupine"
)

// The sequential model of the claim table that chaos histories are checked
// against. Each path is independent (porcupine checks one partition per
// path); a path's state is its holder, "" when free.

type claimOp uint8

const (
	opAcquire claimOp = iota // TryAcquire
	opRelease                // ReleasePath
	opOwner                  // Owner
)

type claimInput struct {
	Op    claimOp
	Path  string
	Agent string
}

type outKind uint8

const (
	outGranted  outKind = iota // TryAcquire succeeded (Token set)
	outRefused                 // ErrClaimed (Owner set)
	outOK                      // ReleasePath succeeded
	outNotOwner                // ErrNotOwner
	outOwner                   // Owner answered (Owner "" for ErrNotClaimed)
	outUnknown                 // timeout, unavailable: may or may not have happened
)

type claimOutput struct {
	Kind  outKind
	Owner string
	Token uint64
	Err   string
}

// stepClaim returns the states a path can be in after op, given the
// state before it; none if op could not have returned out.
func stepClaim(holder string, in claimInput, out claimOutput) []string {
	switch in.Op {
	case opAcquire:
		// Free, or held by the same agent (a re-claim renews): granted.
		// Held by another: refused, naming it.
		canGrant := holder == "" || holder == in.Agent
		switch out.Kind {
		case outGranted:
			if canGrant {
				return []string{in.Agent}
			}
		case outRefused:
			if !canGrant && out.Owner == holder {
				return []string{holder}
			}
		case outUnknown:
			if canGrant {
				return []string{holder, in.Agent}
			}
			return []string{holder}
		}
	case opRelease:
		// Held by the agent: freed. Free: nothing to do, no error.
		// Held by another: ErrNotOwner.
		canRelease := holder == "" || holder == in.Agent
		switch out.Kind {
		case outOK:
			if canRelease {
				return []string{""}
			}
		case outNotOwner:
			if !canRelease {
				return []string{holder}
			}
		case outUnknown:
			if canRelease {
				return []string{holder, ""}
			}
			return []string{holder}
		}
	case opOwner:
		if out.Kind == outOwner && out.Owner == holder {
			return []string{holder}
		}
	}
	return nil
}

func claimModel() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			by := map[string][]porcupine.Operation{}
			var keys []string
			for _, op := range history {
				p := op.Input.(claimInput).Path
				if _, ok := by[p]; !ok {
					keys = append(keys, p)
				}
				by[p] = append(by[p], op)
			}
			sort.Strings(keys)
			out := make([][]porcupine.Operation, 0, len(keys))
			for _, k := range keys {
				out = append(out, by[k])
			}
			return out
		},
		Init: func() []any { return []any{""} },
		Step: func(state, input, output any) []any {
			next := stepClaim(state.(string), input.(claimInput), output.(claimOutput))
			out := make([]any, len(next))
			for i, s := range next {
				out[i] = s
			}
			return out
		},
		Equal: func(a, b any) bool { return a.(string) == b.(string) },
		DescribeOperation: func(input, output any) string {
			in, out := input.(claimInput), output.(claimOutput)
			name := [...]string{"acquire", "release", "owner"}[in.Op]
			res := [...]string{"granted", "refused by " + out.Owner, "ok", "not owner", "owner=" + out.Owner, "unknown: " + out.Err}[out.Kind]
			if out.Kind == outGranted {
				res = fmt.Sprintf("granted token %d", out.Token)
			}
			return fmt.Sprintf("%s %s(%s) -> %s", in.Agent, name, in.Path, res)
		},
		DescribeState: func(state any) string {
			if state.(string) == "" {
				return "free"
			}
			return "held by " + state.(string)
		},
	}
	return nm.ToModel()
}

// checkFencing checks the fencing tokens of the definite grants on each
// path: two different agents never get the same token, and a grant that
// completed before another started has a smaller token if their agents
// differ (a re-claim by the same holder keeps its token).
func checkFencing(ops []porcupine.Operation) error {
	byPath := map[string][]porcupine.Operation{}
	for _, op := range ops {
		if out := op.Output.(claimOutput); out.Kind == outGranted && op.Return != math.MaxInt64 {
			p := op.Input.(claimInput).Path
			byPath[p] = append(byPath[p], op)
		}
	}
	for path, gs := range byPath {
		sort.Slice(gs, func(i, j int) bool { return gs[i].Call < gs[j].Call })
		owner := map[uint64]string{}
		for _, g := range gs {
			a, tok := g.Input.(claimInput).Agent, g.Output.(claimOutput).Token
			if o, ok := owner[tok]; ok && o != a {
				return fmt.Errorf("fencing: token %d on %s granted to both %s and %s", tok, path, o, a)
			}
			owner[tok] = a
		}
		// For each grant, the largest token among grants to other agents
		// that returned before it was called must be smaller than its own.
		byReturn := append([]porcupine.Operation(nil), gs...)
		sort.Slice(byReturn, func(i, j int) bool { return byReturn[i].Return < byReturn[j].Return })
		for _, g := range gs {
			a, tok := g.Input.(claimInput).Agent, g.Output.(claimOutput).Token
			for _, p := range byReturn {
				if p.Return >= g.Call {
					break
				}
				pa, ptok := p.Input.(claimInput).Agent, p.Output.(claimOutput).Token
				if pa != a && ptok >= tok {
					return fmt.Errorf("fencing: on %s, %s got token %d after %s had been granted %d", path, a, tok, pa, ptok)
				}
			}
		}
	}
	return nil
}

// The model and the fencing check must reject the histories a broken
// claim table would produce, or the chaos test proves nothing.
func TestClaimModelRejectsBrokenHistories(t *testing.T) {
	op := func(client int, call, ret int64, agent string, o claimOp, out claimOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Call: call, Return: ret,
			Input: claimInput{Op: o, Path: "p", Agent: agent}, Output: out}
	}
	granted := func(tok uint64) claimOutput { return claimOutput{Kind: outGranted, Token: tok} }
	unknown := claimOutput{Kind: outUnknown}
	inf := int64(math.MaxInt64)
	tests := []struct {
		name     string
		ops      []porcupine.Operation
		linear   bool
		fencedOK bool
	}{
		{"two holders at once", []porcupine.Operation{
			op(0, 0, 1, "a", opAcquire, granted(1)),
			op(1, 2, 3, "b", opAcquire, granted(2)),
		}, false, true},
		{"grant, release, grant", []porcupine.Operation{
			op(0, 0, 1, "a", opAcquire, granted(1)),
			op(0, 2, 3, "a", opRelease, claimOutput{Kind: outOK}),
			op(1, 4, 5, "b", opAcquire, granted(3)),
			op(1, 6, 7, "b", opOwner, claimOutput{Kind: outOwner, Owner: "b"}),
		}, true, true},
		{"stale owner read", []porcupine.Operation{
			op(0, 0, 1, "a", opAcquire, granted(1)),
			op(0, 2, 3, "a", opRelease, claimOutput{Kind: outOK}),
			op(1, 4, 5, "b", opOwner, claimOutput{Kind: outOwner, Owner: "a"}),
		}, false, true},
		{"refused by a non-holder", []porcupine.Operation{
			op(0, 0, 1, "a", opAcquire, granted(1)),
			op(1, 2, 3, "b", opAcquire, claimOutput{Kind: outRefused, Owner: "c"}),
		}, false, true},
		{"release of another's claim succeeds", []porcupine.Operation{
			op(0, 0, 1, "a", opAcquire, granted(1)),
			op(1, 2, 3, "b", opRelease, claimOutput{Kind: outOK}),
			op(0, 4, 5, "a", opOwner, claimOutput{Kind: outOwner, Owner: "a"}),
		}, false, true},
		{"ambiguous acquire that happened later", []porcupine.Operation{
			op(0, 0, inf, "a", opAcquire, unknown),
			op(1, 5, 6, "b", opOwner, claimOutput{Kind: outOwner}),
			op(1, 7, 8, "b", opOwner, claimOutput{Kind: outOwner, Owner: "a"}),
		}, true, true},
		{"ambiguous acquire cannot explain a third holder", []porcupine.Operation{
			op(0, 0, inf, "a", opAcquire, unknown),
			op(1, 7, 8, "b", opOwner, claimOutput{Kind: outOwner, Owner: "c"}),
		}, false, true},
		{"token reused by another agent", []porcupine.Operation{
			op(0, 0, 1, "a", opAcquire, granted(5)),
			op(0, 2, 3, "a", opRelease, claimOutput{Kind: outOK}),
			op(1, 4, 5, "b", opAcquire, granted(5)),
		}, true, false},
		{"token went backwards", []porcupine.Operation{
			op(0, 0, 1, "a", opAcquire, granted(5)),
			op(0, 2, 3, "a", opRelease, claimOutput{Kind: outOK}),
			op(1, 4, 5, "b", opAcquire, granted(4)),
		}, true, false},
		{"re-claim keeps its token", []porcupine.Operation{
			op(0, 0, 1, "a", opAcquire, granted(5)),
			op(0, 2, 3, "a", opAcquire, granted(5)),
		}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(claimModel(), tt.ops); got != tt.linear {
				t.Errorf("linearizable = %v, want %v", got, tt.linear)
			}
			if err := checkFencing(tt.ops); (err == nil) != tt.fencedOK {
				t.Errorf("fencing error = %v, want ok=%v", err, tt.fencedOK)
			}
		})
	}
}
