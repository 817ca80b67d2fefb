package deprovision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

const fileSub = "6f1c2a9e-4b7d-4e2a-9c3f-1a2b3c4d5e6f"

// testPool is the pool of events/user-deleted-admin.json.
const testPool = "us-east-1_Example1"

type fakeService struct {
	subs []string
	err  error
}

func (f *fakeService) Deprovision(_ context.Context, sub string) error {
	f.subs = append(f.subs, sub)
	return f.err
}

type counts struct {
	deprovisioned int
	skipped       map[string]int
}

func (c *counts) UserDeprovisioned(context.Context) { c.deprovisioned++ }
func (c *counts) DeprovisionSkipped(_ context.Context, reason string) {
	if c.skipped == nil {
		c.skipped = map[string]int{}
	}
	c.skipped[reason]++
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// event reads events/<name> and applies edit to its decoded form.
func event(t testing.TB, name string, edit func(map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(ev)
	}
	out, _ := json.Marshal(ev)
	return out
}

func detail(ev map[string]any) map[string]any { return ev["detail"].(map[string]any) }

// A handler told no pool takes the rule's word; one told its pool acts on
// an event that names it, or names none (DeleteUser).
func TestThePoolFilter(t *testing.T) {
	for _, pool := range []string{"", testPool} {
		for _, name := range []string{"user-deleted-admin.json", "user-deleted-self.json"} {
			svc, c := &fakeService{}, &counts{}
			if err := New(svc, pool, quiet, c).Handle(context.Background(), event(t, name, nil)); err != nil || len(svc.subs) != 1 {
				t.Errorf("pool %q, %s: %v, deprovisioned %v", pool, name, err, svc.subs)
			}
		}
	}
	svc, c := &fakeService{}, &counts{}
	_ = New(svc, "us-east-1_Other", quiet, c).Handle(context.Background(), event(t, "user-deleted-admin.json", nil))
	if len(svc.subs) != 0 || c.skipped[SkipOtherPool] != 1 {
		t.Errorf("a handler of another pool deprovisioned %v, skips %v", svc.subs, c.skipped)
	}
}

func TestBothDeletionsDeprovisionTheSub(t *testing.T) {
	for _, name := range []string{"user-deleted-admin.json", "user-deleted-self.json"} {
		svc, c := &fakeService{}, &counts{}
		if err := New(svc, testPool, quiet, c).Handle(context.Background(), event(t, name, nil)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := []string{fileSub}; !slices.Equal(svc.subs, want) {
			t.Errorf("%s: deprovisioned %q, want %q", name, svc.subs, want)
		}
		if c.deprovisioned != 1 {
			t.Errorf("%s: counted %d deprovisioned, want 1", name, c.deprovisioned)
		}
		if len(c.skipped) != 0 {
			t.Errorf("%s: counted skips %v, want none", name, c.skipped)
		}
	}
}

// Events the handler cannot act on succeed, so they are not retried for
// ever, and are counted by reason; none reaches the domain.
// Each skipped event is counted by its reason. Events the rule can
// deliver in the normal run of things (another call, a denied one) are
// logged at INFO; the rest, which reconcile must pick up, at WARN.
func TestEventsLeftToReconcile(t *testing.T) {
	for _, tt := range []struct {
		name   string
		raw    []byte
		reason string
	}{
		{"not JSON", []byte(`{"detail":`), SkipMalformed},
		{"a sub of the wrong type", event(t, "user-deleted-admin.json", func(ev map[string]any) {
			detail(ev)["additionalEventData"] = map[string]any{"sub": 42}
		}), SkipMalformed},
		{"another source", event(t, "user-deleted-admin.json", func(ev map[string]any) { ev["source"] = "aws.s3" }), SkipOtherEvent},
		{"another detail type", event(t, "user-deleted-admin.json", func(ev map[string]any) { ev["detail-type"] = "Scheduled Event" }), SkipOtherEvent},
		{"another call", event(t, "user-deleted-admin.json", func(ev map[string]any) { detail(ev)["eventName"] = "AdminDisableUser" }), SkipOtherEvent},
		{"a denied call", event(t, "user-deleted-admin.json", func(ev map[string]any) { detail(ev)["errorCode"] = "AccessDenied" }), SkipFailedCall},
		{"no additional data", event(t, "user-deleted-self.json", func(ev map[string]any) { delete(detail(ev), "additionalEventData") }), SkipNoSub},
		{"null additional data", event(t, "user-deleted-self.json", func(ev map[string]any) { detail(ev)["additionalEventData"] = nil }), SkipNoSub},
		{"an empty sub", event(t, "user-deleted-self.json", func(ev map[string]any) {
			detail(ev)["additionalEventData"] = map[string]any{"sub": ""}
		}), SkipNoSub},
		{"a sub that is no sub", event(t, "user-deleted-self.json", func(ev map[string]any) {
			detail(ev)["additionalEventData"] = map[string]any{"sub": "not a sub\n"}
		}), SkipInvalidSub},
		{"another pool's AdminDeleteUser", event(t, "user-deleted-admin.json", func(ev map[string]any) {
			detail(ev)["requestParameters"].(map[string]any)["userPoolId"] = "us-east-1_Other"
		}), SkipOtherPool},
		{"another pool named in the additional data", event(t, "user-deleted-self.json", func(ev map[string]any) {
			detail(ev)["additionalEventData"].(map[string]any)["userPoolId"] = "us-east-1_Other"
		}), SkipOtherPool},
	} {
		svc, c := &fakeService{}, &counts{}
		var logs bytes.Buffer
		if err := New(svc, testPool, slog.New(slog.NewJSONHandler(&logs, nil)), c).Handle(context.Background(), tt.raw); err != nil {
			t.Errorf("%s: %v, want success", tt.name, err)
		}
		wantLevel := map[bool]string{true: "INFO", false: "WARN"}[tt.reason == SkipOtherEvent || tt.reason == SkipFailedCall || tt.reason == SkipOtherPool]
		if got := logLevels(t, logs.Bytes()); !slices.Equal(got, []string{wantLevel}) {
			t.Errorf("%s: logged at %v, want one line at %s", tt.name, got, wantLevel)
		}
		if len(svc.subs) != 0 {
			t.Errorf("%s: deprovisioned %v, want none", tt.name, svc.subs)
		}
		if c.skipped[tt.reason] != 1 {
			t.Errorf("%s: counted skips %v, want one %s", tt.name, c.skipped, tt.reason)
		}
		if c.deprovisioned != 0 {
			t.Errorf("%s: counted %d deprovisioned, want 0", tt.name, c.deprovisioned)
		}
	}
}

// A failed delete fails the invocation, so it is retried; the error names
// what failed, and the log line carries the code.
func TestFailuresAreRetried(t *testing.T) {
	for _, failure := range []error{
		fmt.Errorf("delete user: %w", provision.ErrKandyUnavailable),
		provision.ErrInProgress,
		fmt.Errorf("reading record: %w", provision.ErrUnavailable),
	} {
		var logs strings.Builder
		svc, c := &fakeService{err: failure}, &counts{}
		err := New(svc, testPool, slog.New(slog.NewJSONHandler(&logs, nil)), c).Handle(context.Background(), event(t, "user-deleted-admin.json", nil))
		if !errors.Is(err, failure) {
			t.Fatalf("err = %v, want %v", err, failure)
		}
		if c.deprovisioned != 0 {
			t.Errorf("%v: counted %d deprovisioned, want 0", failure, c.deprovisioned)
		}
		if want := `"reason":"` + string(provision.CodeOf(failure)) + `"`; !strings.Contains(logs.String(), want) {
			t.Errorf("%v: logs lack %s:\n%s", failure, want, logs.String())
		}
	}
}

// FuzzHandle: any input succeeds or fails only as the domain did, and no
// input but a valid deletion reaches the domain.
func FuzzHandle(f *testing.F) {
	for _, name := range []string{"user-deleted-admin.json", "user-deleted-self.json"} {
		f.Add(event(f, name, nil))
	}
	f.Add([]byte(`{"source":"aws.cognito-idp","detail-type":"AWS API Call via CloudTrail","detail":{"eventName":"DeleteUser"}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		svc, c := &fakeService{}, &counts{}
		if err := New(svc, testPool, quiet, c).Handle(context.Background(), raw); err != nil {
			t.Fatalf("err = %v for %q", err, raw)
		}
		skipped := 0
		for _, n := range c.skipped {
			skipped += n
		}
		if len(svc.subs)+skipped != 1 {
			t.Errorf("%q: deprovisioned %v and skipped %v, want one of the two", raw, svc.subs, c.skipped)
		}
		if c.deprovisioned != len(svc.subs) {
			t.Errorf("%q: counted %d deprovisioned, want %d, one per sub deprovisioned", raw, c.deprovisioned, len(svc.subs))
		}
	})
}

// logLevels are the levels of JSON log lines.
func logLevels(t *testing.T, raw []byte) []string {
	t.Helper()
	var levels []string
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var l struct{ Level string }
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		levels = append(levels, l.Level)
	}
	return levels
}
