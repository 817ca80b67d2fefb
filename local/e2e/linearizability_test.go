package e2e

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/reconcile"
)

// The linearizability check: each history of the model test, split by
// sub, must be explained by some order of its operations, each taking
// effect at one instant between its call and its return, against the
// sequential model of one user's account below.

// The operations, as the user, Cognito, EventBridge and an operator see
// them.
const (
	opPost      = "POST /users"
	opTrigger   = "trigger"
	opRetry     = "retry"
	opGet       = "GET /users/me"
	opToken     = "POST /users/me/token"
	opDelete    = "DELETE /users/me"
	opLeave     = "deprovision"
	opReconcile = "reconcile --fix"
)

// The answers that succeeded; a failure is answered by its provision.Code.
const (
	ansCreated       = "201"
	ansExisting      = "200"
	ansDeleted       = "204"
	ansDeprovisioned = "deprovisioned"
	// ansAccountClosed is the answer to a user who left the pool: POST
	// /users's 403.
	ansAccountClosed = "account_closed"
)

// accountKind is where one user's account is in its life.
type accountKind int

const (
	kindAbsent accountKind = iota
	kindActive
	kindClosedByUser // a tombstone of the user's own DELETE
	kindLeft         // a tombstone of the user leaving the pool: final
)

// account is the model's state. An active account names its Kandy user and
// the instant it was created, which a re-creation changes; "" when it was
// created by an operation whose answer was lost, until a read names it.
type account struct {
	kind accountKind
	id   string
}

func (a account) String() string {
	name := [...]string{"absent", "active", "closed by the user", "left the pool"}[a.kind]
	if a.kind == kindActive {
		return fmt.Sprintf("%s %q", name, a.id)
	}
	return name
}

// linOp is one operation's input; linAnswer its answer.
type linOp struct{ sub, op string }

type linAnswer struct {
	answer string
	// id names the account an answer carries (see account.id).
	id string
	// class is the drift reconcile reported for the sub, if any.
	class reconcile.Class
}

// effectUnknown: the operation may or may not have taken effect.
func effectUnknown(answer string) bool {
	switch provision.Code(answer) {
	case provision.CodeInProgress, provision.CodeKandyUnavailable, provision.CodeUnavailable, provision.CodeInternal:
		return true
	}
	return false
}

// accountIdentity is what names an account incarnation in an answer: the
// user id is the sub's own, so the creation instant tells a re-creation.
func accountIdentity(a provision.Account) string {
	return a.UserID + " created " + a.CreatedAt.UTC().Format(time.RFC3339Nano)
}

// stepAccount is the sequential model: every state the account may be in
// after op answered ans in state s (none: op could not answer that).
func stepAccount(s account, op string, ans linAnswer) []account {
	st := modelStep{s: s, ans: ans, unknown: effectUnknown(ans.answer), creatable: s.kind == kindAbsent}
	// none: the answer says there is no account, as it may where there
	// is none; account_closed only to a user who left.
	st.none = s.kind != kindActive && ans.answer == string(provision.CodeNotProvisioned) ||
		s.kind == kindLeft && ans.answer == ansAccountClosed
	switch op {
	case opPost:
		return st.post()
	case opTrigger, opRetry:
		return st.ensure()
	case opGet, opToken:
		return st.read(op)
	case opDelete:
		return st.delete()
	case opLeave:
		return st.leave()
	case opReconcile:
		return st.reconcile()
	}
	return nil
}

// modelStep is one operation's answer in one state, for stepAccount.
type modelStep struct {
	s                        account
	ans                      linAnswer
	unknown, creatable, none bool
}

func active(id string) account { return account{kind: kindActive, id: id} }

// same reports whether an answer's account is s's, naming it if s did
// not know it yet.
func (st modelStep) same() []account {
	if st.s.kind == kindActive && (st.s.id == "" || st.s.id == st.ans.id) {
		return []account{active(st.ans.id)}
	}
	return nil
}

func (st modelStep) post() []account {
	// The user's own request also takes back a tombstone of their own.
	creatable := st.creatable || st.s.kind == kindClosedByUser
	switch {
	case st.ans.answer == ansCreated && creatable:
		return []account{active(st.ans.id)}
	case st.ans.answer == ansExisting:
		return st.same()
	case st.s.kind == kindLeft && st.ans.answer == ansAccountClosed:
		return []account{st.s}
	case st.unknown && creatable:
		// It may have lifted the tombstone, or created the account.
		return []account{st.s, {kind: kindAbsent}, active("")}
	case st.unknown:
		return []account{st.s}
	}
	return nil
}

// ensure is the trigger's and the retry worker's: never over a tombstone.
func (st modelStep) ensure() []account {
	switch {
	case st.ans.answer == ansCreated && st.creatable:
		return []account{active(st.ans.id)}
	case st.ans.answer == ansExisting:
		return st.same()
	case st.none && st.s.kind != kindAbsent:
		return []account{st.s}
	case st.unknown && st.creatable:
		return []account{st.s, active("")}
	case st.unknown:
		return []account{st.s}
	}
	return nil
}

func (st modelStep) read(op string) []account {
	switch {
	case st.ans.answer == ansExisting && op == opGet:
		return st.same()
	case st.ans.answer == ansExisting:
		if st.s.kind == kindActive {
			return []account{st.s}
		}
	case st.none:
		return []account{st.s}
	case st.ans.answer == string(provision.CodeInProgress):
		// A creation is under way: only where one may start.
		if st.s.kind == kindAbsent || st.s.kind == kindClosedByUser {
			return []account{st.s}
		}
	case st.unknown:
		return []account{st.s}
	}
	return nil
}

func (st modelStep) delete() []account {
	closed := account{kind: kindClosedByUser}
	if st.s.kind == kindLeft {
		closed = st.s // leaving is final: a DELETE keeps its tombstone
	}
	switch {
	case st.ans.answer == ansDeleted && st.s.kind != kindAbsent:
		// Also a delete left half-way, which it finishes.
		return []account{closed}
	case st.none:
		// With no account, the user's wish for none is kept.
		return []account{closed}
	case st.unknown:
		return []account{st.s, closed}
	}
	return nil
}

func (st modelStep) leave() []account {
	switch {
	case st.ans.answer == ansDeprovisioned:
		return []account{{kind: kindLeft}}
	case st.unknown:
		return []account{st.s, {kind: kindLeft}}
	}
	return nil
}

// reconcile: each repair checks again under a claim; it may find the
// account changed and do nothing.
func (st modelStep) reconcile() []account {
	next := []account{st.s}
	switch st.ans.class {
	case reconcile.Missing, reconcile.Stale:
		if st.creatable {
			next = append(next, active(""))
		}
	case reconcile.Broken:
		if st.s.kind == kindActive || st.creatable {
			next = append(next, account{kind: kindAbsent}, active(""))
		}
	case reconcile.Gone:
		next = append(next, account{kind: kindLeft})
	}
	return next
}

var accountModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		bySub := map[string][]porcupine.Operation{}
		var order []string
		for _, o := range history {
			sub := o.Input.(linOp).sub
			if bySub[sub] == nil {
				order = append(order, sub)
			}
			bySub[sub] = append(bySub[sub], o)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, sub := range order {
			out = append(out, bySub[sub])
		}
		return out
	},
	Init: func() []any { return []any{account{kind: kindAbsent}} },
	Step: func(state, input, output any) []any {
		var out []any
		for _, s := range stepAccount(state.(account), input.(linOp).op, output.(linAnswer)) {
			out = append(out, s)
		}
		return out
	},
	DescribeOperation: func(input, output any) string {
		in, ans := input.(linOp), output.(linAnswer)
		s := in.op + " -> " + ans.answer
		if ans.id != "" {
			s += " " + ans.id
		}
		if ans.class != "" {
			s += " (" + string(ans.class) + ")"
		}
		return s
	},
	DescribeState: func(state any) string { return state.(account).String() },
	DescribeOperationMetadata: func(info any) string {
		return info.(string)
	},
}

// linCheckTimeout bounds porcupine's search; a history it cannot decide in
// that time fails, rather than passing unchecked.
const linCheckTimeout = 60 * time.Second

// checkLinearizable checks history with porcupine and, when it is not
// linearizable, writes porcupine's visualisation and returns the problem,
// naming its path; "" when it is.
func checkLinearizable(seed uint64, history []event) string {
	if len(history) == 0 {
		return ""
	}
	t0 := history[0].start
	for _, e := range history {
		if e.start.Before(t0) {
			t0 = e.start
		}
	}
	ops := make([]porcupine.Operation, 0, len(history))
	for _, e := range history {
		ops = append(ops, porcupine.Operation{
			ClientId: e.worker,
			Input:    linOp{sub: e.sub, op: e.op},
			Output:   linAnswer{answer: e.result, id: e.account, class: e.class},
			Call:     e.start.Sub(t0).Nanoseconds(),
			Return:   e.end.Sub(t0).Nanoseconds(),
			Metadata: fmt.Sprintf("worker %d #%d %s", e.worker, e.seq, e.sub),
		})
	}
	model := accountModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(model, ops, linCheckTimeout)
	if res == porcupine.Ok {
		return ""
	}
	problem := fmt.Sprintf("porcupine: the history is not linearizable (%s)", res)
	if res == porcupine.Unknown {
		problem = fmt.Sprintf("porcupine could not decide within %s whether the history is linearizable", linCheckTimeout)
	}
	problem += explain(model, info, accountModel.Partition(ops))
	f, err := os.CreateTemp("", fmt.Sprintf("model-seed-%d-*.html", seed))
	if err == nil {
		err = porcupine.Visualize(model, info, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return problem + "\n  writing its visualisation: " + err.Error()
	}
	return problem + "\n  porcupine's visualisation: " + f.Name()
}

// explain names, for each sub whose history is not linearizable, the state
// its longest linearizable prefix reaches and the operations that could
// come next, none of which the model accepts there.
func explain(model porcupine.Model, info porcupine.LinearizationInfo, partitions [][]porcupine.Operation) string {
	var b strings.Builder
	for i, partials := range info.PartialLinearizationsOperations() {
		var longest []porcupine.Operation
		for _, p := range partials {
			if len(p) > len(longest) {
				longest = p
			}
		}
		all := partitions[i]
		if len(longest) == len(all) {
			continue
		}
		done := map[porcupine.Operation]bool{}
		state := model.Init()
		for _, o := range longest {
			done[o] = true
			_, state = model.Step(state, o.Input, o.Output)
		}
		last := "none"
		if len(longest) > 0 {
			last = describe(longest[len(longest)-1])
		}
		fmt.Fprintf(&b, "\n  %s: after %d of its %d operations (the last: %s) the account is %s, and none of these can come next:",
			all[0].Input.(linOp).sub, len(longest), len(all), last, model.DescribeState(state))
		var rest []porcupine.Operation
		firstReturn := int64(math.MaxInt64)
		for _, o := range all {
			if !done[o] {
				rest = append(rest, o)
				firstReturn = min(firstReturn, o.Return)
			}
		}
		for _, o := range rest {
			if o.Call <= firstReturn {
				fmt.Fprintf(&b, "\n    %s", describe(o))
			}
		}
	}
	return b.String()
}

func describe(o porcupine.Operation) string {
	return fmt.Sprintf("[%s] %s at %.3f..%.3f s", o.Metadata, accountModel.DescribeOperation(o.Input, o.Output),
		float64(o.Call)/1e9, float64(o.Return)/1e9)
}

// TestAccountModel checks the model on small histories of one sub, each
// operation [call, return] in milliseconds: what it must reject, and what
// answers of unknown effect must let through.
func TestAccountModel(t *testing.T) {
	type op struct {
		call, ret int64
		name      string
		ans       linAnswer
	}
	a, b := linAnswer{answer: ansCreated, id: "a"}, linAnswer{answer: ansCreated, id: "b"}
	get := func(id string) linAnswer { return linAnswer{answer: ansExisting, id: id} }
	none := linAnswer{answer: string(provision.CodeNotProvisioned)}
	lost := linAnswer{answer: string(provision.CodeKandyUnavailable)}
	for _, c := range []struct {
		name string
		ok   bool
		ops  []op
	}{
		{"a read after a create sees it", true, []op{{0, 1, opPost, a}, {2, 3, opGet, get("a")}}},
		{"a read of an older account", false, []op{{0, 1, opPost, a}, {2, 3, opDelete, linAnswer{answer: ansDeleted}},
			{4, 5, opPost, b}, {6, 7, opGet, get("a")}}},
		{"a read concurrent with a re-creation", true, []op{{0, 1, opPost, a}, {2, 3, opDelete, linAnswer{answer: ansDeleted}},
			{4, 7, opPost, b}, {5, 6, opGet, none}}},
		{"200 without an account", false, []op{{0, 1, opPost, get("a")}}},
		{"the trigger after the user's delete", false, []op{{0, 1, opPost, a}, {2, 3, opDelete, linAnswer{answer: ansDeleted}},
			{4, 5, opTrigger, b}}},
		{"the user's POST after their delete", true, []op{{0, 1, opPost, a}, {2, 3, opDelete, linAnswer{answer: ansDeleted}},
			{4, 5, opPost, b}}},
		{"POST after leaving the pool", false, []op{{0, 1, opPost, a}, {2, 3, opLeave, linAnswer{answer: ansDeprovisioned}},
			{4, 5, opPost, b}}},
		{"POST after leaving is closed", true, []op{{0, 1, opLeave, linAnswer{answer: ansDeprovisioned}},
			{2, 3, opPost, linAnswer{answer: ansAccountClosed}}}},
		{"a lost answer may have created the account", true, []op{{0, 1, opPost, lost}, {2, 3, opGet, get("a")}, {4, 5, opPost, get("a")}}},
		{"a lost answer may have done nothing", true, []op{{0, 1, opPost, lost}, {2, 3, opGet, none}, {4, 5, opRetry, a}}},
		{"a lost answer names no account for later", false, []op{{0, 1, opPost, lost}, {2, 3, opGet, get("a")}, {4, 5, opGet, get("b")}}},
		{"reconcile creates nothing after a delete", false, []op{{0, 1, opDelete, none},
			{2, 3, opReconcile, linAnswer{answer: "done", class: reconcile.Missing}}, {4, 5, opGet, get("a")}}},
	} {
		var ops []porcupine.Operation
		for _, o := range c.ops {
			ops = append(ops, porcupine.Operation{Input: linOp{sub: "s", op: o.name}, Output: o.ans,
				Call: o.call * int64(time.Millisecond), Return: o.ret * int64(time.Millisecond)})
		}
		if got := porcupine.CheckOperations(accountModel.ToModel(), ops); got != c.ok {
			t.Errorf("%s: linearizable %v, want %v", c.name, got, c.ok)
		}
	}
}
