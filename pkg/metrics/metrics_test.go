package metrics

import (
	"bufio"
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/emfcheck"
)

func parseAll(t *testing.T, out []byte) []emfcheck.Datum {
	t.Helper()
	var all []emfcheck.Datum
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		d, err := emfcheck.Parse(sc.Bytes())
		if err != nil {
			t.Fatalf("line %s: %v", sc.Text(), err)
		}
		all = append(all, d...)
	}
	return all
}

func TestEveryEventIsValidEMF(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, "KandyProvisioner/test")
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	r.UserCreated(ctx)
	r.UserCreated(ctx)
	r.UserAlreadyPresent(ctx)
	r.QuotaExceeded(ctx)
	r.KandyCall(ctx, "create_user", 12500*time.Microsecond, "")
	r.KandyCall(ctx, "create_user", 3*time.Millisecond, "quota_exceeded")
	r.KandyCall(ctx, "domain_token", time.Millisecond, "unavailable")
	r.Deleted(ctx, 3)
	r.AccountDeleted(ctx, "trigger")
	r.AccountDeleted(ctx, "retry")
	r.AccountDeleted(ctx, "retry")
	r.UserDeprovisioned(ctx)
	r.DeprovisionSkipped(ctx, "no_sub")

	data := parseAll(t, buf.Bytes())
	for _, d := range data {
		if d.Namespace != "KandyProvisioner/test" {
			t.Fatalf("namespace %q", d.Namespace)
		}
	}
	for _, c := range []struct {
		name string
		dims map[string]string
		want float64
	}{
		{UsersCreated, nil, 2},
		{UsersAlreadyPresent, nil, 1},
		{QuotaExceeded, nil, 1},
		{KandyErrors, nil, 2},
		{KandyErrors, map[string]string{DimErrorKind: "quota_exceeded"}, 1},
		{KandyErrors, map[string]string{DimErrorKind: "unavailable"}, 1},
		{DeletedByUser, nil, 3},
		{AccountDeletedSkips, nil, 3},
		{AccountDeletedSkips, map[string]string{DimPath: "retry"}, 2},
		{AccountDeletedSkips, map[string]string{DimPath: "trigger"}, 1},
		{Deprovisioned, nil, 1},
		{DeprovisionEventsSkipped, map[string]string{DimReason: "no_sub"}, 1},
		{KandyLatency, map[string]string{DimOperation: "create_user"}, 15.5},
		{KandyLatency, map[string]string{DimOperation: "domain_token"}, 1},
	} {
		if got := emfcheck.Sum(data, c.name, c.dims); got != c.want {
			t.Errorf("%s %v = %v, want %v", c.name, c.dims, got, c.want)
		}
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"requestId":"req-1"`)) {
		t.Error("lines do not carry the request id")
	}
}

// Concurrent events must stay whole lines.
func TestConcurrentLinesDoNotInterleave(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, "")
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.KandyCall(context.Background(), "create_user", time.Millisecond, "rejected")
		}()
	}
	wg.Wait()
	data := parseAll(t, buf.Bytes())
	if got := emfcheck.Sum(data, KandyErrors, nil); got != 50 {
		t.Fatalf("KandyErrors = %v, want 50", got)
	}
	if data[0].Namespace != DefaultNamespace {
		t.Fatalf("namespace %q", data[0].Namespace)
	}
}

// The checker itself must refuse what CloudWatch would drop.
func TestCheckerRefusesBrokenDocuments(t *testing.T) {
	for _, line := range []string{
		`{"_aws":{"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"A"}]}]},"A":1}`,
		`{"_aws":{"Timestamp":1764000000000,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"A"}]}]}}`,
		`{"_aws":{"Timestamp":1764000000000,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["D"]],"Metrics":[{"Name":"A"}]}]},"A":1}`,
		`{"_aws":{"Timestamp":1764000000000,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"A","Unit":"Parsecs"}]}]},"A":1}`,
		`{"_aws":{"Timestamp":1764000000000,"CloudWatchMetrics":[{"Dimensions":[[]],"Metrics":[{"Name":"A"}]}]},"A":1}`,
		`{"_aws":{"Timestamp":1764000000000,"CloudWatchMetrics":[]}}`,
		`{"_aws":{"Timestamp":1764000000000,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"A"}]}]},"A":"1"}`,
		`{"_aws":{"Timestamp":1764000000000,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"A"}]}]},"A":1} x`,
	} {
		if _, err := emfcheck.Parse([]byte(line)); err == nil {
			t.Errorf("accepted %s", line)
		}
	}
}

// Drift is published per class and in total, zeros included, so an alarm
// on the total clears when a reconcile finds agreement.
func TestDrift(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, "KandyProvisioner/test")
	r.Drift(context.Background(), "missing", 2)
	r.Drift(context.Background(), "gone", 0)
	data := parseAll(t, buf.Bytes())
	if got := emfcheck.Sum(data, Drift, nil); got != 2 {
		t.Fatalf("total drift %v", got)
	}
	if len(data) != 4 {
		t.Fatalf("%d data, want 4", len(data))
	}
	for class, want := range map[string]float64{"missing": 2, "gone": 0} {
		if got := emfcheck.Sum(data, Drift, map[string]string{DimClass: class}); got != want {
			t.Errorf("%s: drift %v, want %v", class, got, want)
		}
	}
}
