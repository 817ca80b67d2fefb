package reconcile_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/reconcile"
)

// TestReporterNamesAtMost100Items: a large drift names its first 100 items
// and says there are more, so one run cannot flood the logs; the counts
// published are whole.
func TestReporterNamesAtMost100Items(t *testing.T) {
	pool := make([]reconcile.CognitoUser, 150)
	for i := range pool {
		pool[i] = reconcile.CognitoUser{Username: fmt.Sprint(i), Sub: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Confirmed: true}
	}
	src := reconcile.Sources{
		Records:    func(context.Context, func(provision.Record) error) error { return nil },
		KandyUsers: func(context.Context) ([]reconcile.KandyUser, error) { return nil, nil },
		CognitoUsers: func(_ context.Context, fn func([]reconcile.CognitoUser) error) error {
			return fn(pool)
		},
	}
	var logs strings.Builder
	d := driftCounts{}
	if err := reconcile.NewReporter(src, d, slog.New(slog.NewJSONHandler(&logs, nil))).Handle(context.Background(), events.EventBridgeEvent{}); err != nil {
		t.Fatal(err)
	}
	if d["missing"] != 150 {
		t.Errorf("published %v, want 150 missing", d)
	}
	if n := strings.Count(logs.String(), `"msg":"reconcile: drift"`); n != 100 {
		t.Errorf("%d drift lines, want 100", n)
	}
	if n := strings.Count(logs.String(), `"msg":"reconcile: more drift not listed"`); n != 1 {
		t.Errorf("%d lines saying more drift is not listed, want 1", n)
	}
}
