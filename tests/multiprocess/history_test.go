package multiprocess

// A history of the user adds and removes the fault tests issue, and the
// checks run on it once the servers have converged: at most one
// acknowledged create of a user between acknowledged removes; a
// linearizability check (porcupine) of each user as a register where
// 'user add' is a create-if-absent and the last operation is a read of the
// converged value; and no acknowledgement at an epoch lower than one
// already given before the operation was issued.

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// outcome is what a mutating command answered.
type outcome int

const (
	failed outcome = iota // exit status not 0, or an answer that is neither ok nor queued
	queued                // "queued: ...": not committed (yet)
	acked                 // "ok: ...": committed
)

func (o outcome) String() string {
	return [...]string{"failed", "queued", "ok"}[o]
}

// classify reads a mutating command's answer. Only "ok: " with exit status
// 0 acknowledges; anything else may or may not take effect later.
func classify(r result) outcome {
	switch {
	case r.code == 0 && strings.HasPrefix(r.stdout, "ok: "):
		return acked
	case r.code == 0 && strings.HasPrefix(r.stdout, "queued: "):
		return queued
	}
	return failed
}

// okText splits an "ok: ..." line into what was done and, if the line has
// one, the epoch it was certified at.
var okText = regexp.MustCompile(`^ok: (.*?)(?: \(certified at epoch (\d+), seq \d+\))?\n?$`)

// userOp is one 'user add' or 'user remove' as the client saw it.
type userOp struct {
	node string
	kind string // "add" or "remove"
	user string
	home string // add: the home server asked for
	call time.Time
	ret  time.Time
	out  outcome
	r    result
}

func (o userOp) String() string {
	what := fmt.Sprintf("user %s %s", o.kind, o.user)
	if o.kind == "add" {
		what += " --home-server " + o.home
	}
	answer := strings.TrimSpace(o.r.stdout)
	if o.out == failed {
		answer = fmt.Sprintf("exit %d: %s", o.r.code, strings.TrimSpace(o.r.stderr))
	}
	return fmt.Sprintf("%s at %s [%s .. %s]: %s", what, o.node,
		o.call.Format("15:04:05.000"), o.ret.Format("15:04:05.000"), answer)
}

// history collects userOps from any goroutine.
type history struct {
	mu  sync.Mutex
	ops []userOp
}

func (h *history) add(op userOp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
}

func (h *history) all() []userOp {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// userOpFor describes the user command in args (without --home), or
// reports that args is not one.
func userOpFor(args []string) (userOp, bool) {
	if len(args) < 3 || args[0] != "user" || (args[1] != "add" && args[1] != "remove") {
		return userOp{}, false
	}
	op := userOp{kind: args[1], user: args[2]}
	if i := slices.Index(args, "--home-server"); i >= 0 && i+1 < len(args) {
		op.home = args[i+1]
	}
	return op, true
}

// doubleCreates finds every violation of "at most one acknowledged create of a
// user without an acknowledged remove between them" in ops: for each user,
// the acknowledged adds may outnumber the acknowledged removes by one at
// most, whatever the order. It is what the linearizability check would
// find first, in words a failure message can use.
func doubleCreates(ops []userOp) []string {
	byUser := map[string][]userOp{}
	for _, op := range ops {
		if op.out == acked {
			byUser[op.user] = append(byUser[op.user], op)
		}
	}
	var bad []string
	for _, user := range slices.Sorted(maps.Keys(byUser)) {
		var adds, removes []string
		for _, op := range byUser[user] {
			if op.kind == "add" {
				adds = append(adds, op.String())
			} else {
				removes = append(removes, op.String())
			}
		}
		if len(adds) > len(removes)+1 {
			bad = append(bad, fmt.Sprintf("user %s: %d acknowledged adds and %d acknowledged removes:\n    %s",
				user, len(adds), len(removes), strings.Join(slices.Concat(adds, removes), "\n    ")))
		}
	}
	return bad
}

// staleAcks finds acknowledgements at an epoch lower than that of one
// that had already been given when the operation was invoked: a master of
// a superseded epoch acknowledging on its own authority. (A change
// committed after another has a later place in the log, and the epochs of
// the log's entries never go down.) Only acknowledgements that name their
// epoch are compared.
func staleAcks(ops []userOp) []string {
	var bad []string
	for _, b := range ops {
		eb, ok := ackEpoch(b.r)
		if b.out != acked || !ok {
			continue
		}
		for _, a := range ops {
			ea, ok := ackEpoch(a.r)
			if a.out == acked && ok && a.ret.Before(b.call) && eb < ea {
				bad = append(bad, fmt.Sprintf("%v\n    was acknowledged at epoch %d after\n    %v\n    had been at epoch %d", b, eb, a, ea))
				break
			}
		}
	}
	return bad
}

// The register model: one user, its value the home server's name, "" while
// the user does not exist.
type (
	regInput struct {
		kind  string  // "add", "remove" or "read"
		value string  // add: the home server
		out   outcome // add, remove: what the client was told
	}
	regOutput struct {
		value string // read: the converged value
	}
)

// userModel is a user as a register. An acknowledged add is a create that
// succeeded: the user was absent and now has the home server asked for. An
// acknowledged remove found the user and removed it. An add or remove that
// was not acknowledged (queued, refused, failed) may have taken effect or
// not, at any time after it was issued: such operations are given a return
// time after everything else, and the model tries both. A read must see the
// register's value.
var userModel = porcupine.NondeterministicModel{
	Init: func() []any { return []any{""} },
	Step: func(state, input, output any) []any {
		v, in := state.(string), input.(regInput)
		switch in.kind {
		case "read":
			if v == output.(regOutput).value {
				return []any{v}
			}
			return nil
		case "add":
			switch {
			case v != "" && in.out == acked:
				return nil // a create of a user that exists cannot succeed
			case v != "":
				return []any{v}
			case in.out == acked:
				return []any{in.value}
			}
			return []any{"", in.value}
		case "remove":
			switch {
			case v == "" && in.out == acked:
				return nil
			case v == "":
				return []any{""}
			case in.out == acked:
				return []any{""}
			}
			return []any{v, ""}
		}
		return nil
	},
	Equal: func(a, b any) bool { return a == b },
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.kind == "read" {
			return fmt.Sprintf("read -> %q", output.(regOutput).value)
		}
		return fmt.Sprintf("%s %q: %s", in.kind, in.value, in.out)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
}

// linearizable checks each user's operations in ops, ended by a read of
// final[user] ("" if absent) at readAt, against userModel. It returns a
// description of each user whose history no order explains.
func linearizable(ops []userOp, final map[string]string, readAt time.Time) []string {
	if len(ops) == 0 {
		return nil
	}
	base := ops[0].call
	for _, op := range ops {
		if op.call.Before(base) {
			base = op.call
		}
	}
	ts := func(t time.Time) int64 { return int64(t.Sub(base)) }
	byUser := map[string][]porcupine.Operation{}
	for i, op := range ops {
		ret := ts(op.ret)
		if op.out != acked {
			ret = math.MaxInt64 // may take effect at any time after its call
		}
		byUser[op.user] = append(byUser[op.user], porcupine.Operation{
			ClientId: i,
			Input:    regInput{kind: op.kind, value: op.home, out: op.out},
			Call:     ts(op.call),
			Output:   regOutput{},
			Return:   ret,
		})
	}
	model := userModel.ToModel()
	var bad []string
	for _, user := range slices.Sorted(maps.Keys(byUser)) {
		hist := append(byUser[user], porcupine.Operation{
			ClientId: len(ops),
			Input:    regInput{kind: "read"},
			Call:     ts(readAt),
			Output:   regOutput{value: final[user]},
			Return:   ts(readAt),
		})
		res := porcupine.CheckOperationsTimeout(model, hist, 10*time.Second)
		if res == porcupine.Illegal {
			var lines []string
			for _, op := range ops {
				if op.user == user {
					lines = append(lines, op.String())
				}
			}
			bad = append(bad, fmt.Sprintf("user %s: no order of its operations explains the converged value %q:\n    %s",
				user, final[user], strings.Join(lines, "\n    ")))
		}
	}
	return bad
}

// checkUserHistory runs the checks on h, with final the converged users
// (name to home server name) read at readAt.
func checkUserHistory(t *testing.T, h *history, final map[string]string, readAt time.Time) {
	t.Helper()
	ops := h.all()
	n := 0
	for _, op := range ops {
		if op.out == acked {
			n++
		}
	}
	for _, p := range doubleCreates(ops) {
		t.Errorf("two acknowledged creates of one user: %s", p)
	}
	for _, p := range linearizable(ops, final, readAt) {
		t.Errorf("not linearizable: %s", p)
	}
	for _, p := range staleAcks(ops) {
		t.Errorf("acknowledged at a superseded epoch: %s", p)
	}
	t.Logf("history: %d user operations, %d acknowledged, checked against the converged users", len(ops), n)
}

// TestUserHistoryChecker runs the checks on made-up histories: they must
// accept what a correct system may do and flag what it may not.
func TestUserHistoryChecker(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	op := func(kind, user, home string, call, ret int, out outcome) userOp {
		return userOp{node: "s1", kind: kind, user: user, home: home, call: at(call), ret: at(ret), out: out}
	}
	okAt := func(o userOp, epoch int) userOp {
		o.r.stdout = fmt.Sprintf("ok: user %s added (home server %s) (certified at epoch %d, seq 1)\n", o.user, o.home, epoch)
		return o
	}
	if got := staleAcks([]userOp{okAt(op("add", "ann", "s2", 0, 10, acked), 2), okAt(op("add", "bob", "s2", 20, 30, acked), 1)}); len(got) != 1 {
		t.Errorf("staleAcks of an epoch-1 acknowledgement after an epoch-2 one: %q; want one", got)
	}
	if got := staleAcks([]userOp{okAt(op("add", "ann", "s2", 0, 30, acked), 2), okAt(op("add", "bob", "s2", 20, 40, acked), 1)}); len(got) != 0 {
		t.Errorf("staleAcks of concurrent acknowledgements at epochs 2 and 1: %q; want none", got)
	}
	if got := staleAcks([]userOp{okAt(op("add", "ann", "s2", 0, 10, acked), 1), okAt(op("add", "bob", "s2", 20, 30, acked), 2)}); len(got) != 0 {
		t.Errorf("staleAcks of epochs 1 then 2: %q; want none", got)
	}
	for _, tc := range []struct {
		name   string
		ops    []userOp
		final  map[string]string
		double bool // doubleCreates finds something
		linear bool // linearizable finds nothing
	}{
		{"one create", []userOp{op("add", "ann", "s2", 0, 10, acked)},
			map[string]string{"ann": "s2"}, false, true},
		{"acknowledged create lost", []userOp{op("add", "ann", "s2", 0, 10, acked)},
			map[string]string{}, false, false},
		{"acknowledged create with another value", []userOp{op("add", "ann", "s2", 0, 10, acked)},
			map[string]string{"ann": "s3"}, false, false},
		{"second create refused", []userOp{op("add", "ann", "s2", 0, 10, acked), op("add", "ann", "s3", 20, 30, failed)},
			map[string]string{"ann": "s2"}, false, true},
		{"two acknowledged creates in turn", []userOp{op("add", "ann", "s2", 0, 10, acked), op("add", "ann", "s3", 20, 30, acked)},
			map[string]string{"ann": "s2"}, true, false},
		{"two acknowledged concurrent creates", []userOp{op("add", "ann", "s2", 0, 30, acked), op("add", "ann", "s3", 10, 40, acked)},
			map[string]string{"ann": "s3"}, true, false},
		{"create, remove, create", []userOp{op("add", "ann", "s2", 0, 10, acked), op("remove", "ann", "", 20, 30, acked), op("add", "ann", "s3", 40, 50, acked)},
			map[string]string{"ann": "s3"}, false, true},
		{"removed user back", []userOp{op("add", "ann", "s2", 0, 10, acked), op("remove", "ann", "", 20, 30, acked)},
			map[string]string{"ann": "s2"}, false, false},
		{"queued create applied later", []userOp{op("add", "bob", "s1", 0, 10, queued)},
			map[string]string{"bob": "s1"}, false, true},
		{"queued create never applied", []userOp{op("add", "bob", "s1", 0, 10, queued)},
			map[string]string{}, false, true},
		{"queued create lost to an acknowledged one", []userOp{op("add", "bob", "s1", 0, 10, queued), op("add", "bob", "s3", 20, 30, acked)},
			map[string]string{"bob": "s3"}, false, true},
		{"queued create wins over a later acknowledged one", []userOp{op("add", "bob", "s1", 0, 10, queued), op("add", "bob", "s3", 20, 30, acked)},
			map[string]string{"bob": "s1"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(doubleCreates(tc.ops)) > 0; got != tc.double {
				t.Errorf("doubleCreates found something: %v; want %v", got, tc.double)
			}
			if got := linearizable(tc.ops, tc.final, at(1000)); (len(got) == 0) != tc.linear {
				t.Errorf("linearizable: %q; want linearizable %v", got, tc.linear)
			}
		})
	}
}
