package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/emfcheck"
	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/metrics"
)

// emfSince parses every EMF line p wrote after its first `from` bytes,
// waiting, up to a deadline, for the emulator's asynchronous copy of the
// function's output to hold at least want data points.
func emfSince(t *testing.T, p *processes.Process, from, want int) []emfcheck.Datum {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var all []emfcheck.Datum
		for _, line := range strings.Split(p.Output()[from:], "\n") {
			if !emfcheck.IsEMF([]byte(line)) {
				continue
			}
			d, err := emfcheck.Parse([]byte(line))
			if err != nil {
				t.Fatalf("invalid EMF line %s: %v", line, err)
			}
			all = append(all, d...)
		}
		if len(all) >= want || time.Now().After(deadline) {
			return all
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The real binary's metrics, as CloudWatch would extract them.
func TestMetricsAreEmitted(t *testing.T) {
	stack.sim.SetQuota(roomy)
	defer stack.sim.ClearFaults()
	from := len(stack.api.Output())
	sub := newSub()
	for _, want := range []int{201, 200} {
		if a := asUser(t, stack.api, sub).createUser(); a.StatusCode != want {
			t.Fatalf("POST /users = %d %s", a.StatusCode, a.Body)
		}
	}
	stack.sim.Inject(kandysim.EndpointCreateUser, kandysim.FaultHTTP500, 1)
	if a := asUser(t, stack.api, newSub()).createUser(); a.StatusCode != 502 {
		t.Fatalf("POST /users with Kandy down = %d %s", a.StatusCode, a.Body)
	}
	stack.sim.SetQuota(len(stack.sim.UserIDs()))
	if a := asUser(t, stack.api, newSub()).createUser(); a.StatusCode != 403 {
		t.Fatalf("POST /users past the quota = %d %s", a.StatusCode, a.Body)
	}
	stack.sim.SetQuota(roomy)

	// 3 create latencies, 2 errors under 2 dimension sets each, 3 outcomes.
	data := emfSince(t, stack.api.Process, from, 3+2*2+3)
	for _, c := range []struct {
		name string
		dims map[string]string
		want float64
	}{
		{metrics.UsersCreated, nil, 1},
		{metrics.UsersAlreadyPresent, nil, 1},
		{metrics.QuotaExceeded, nil, 1},
		{metrics.KandyErrors, nil, 2},
		{metrics.KandyErrors, map[string]string{metrics.DimErrorKind: "unavailable"}, 1},
		{metrics.KandyErrors, map[string]string{metrics.DimErrorKind: "quota_exceeded"}, 1},
	} {
		if got := emfcheck.Sum(data, c.name, c.dims); got != c.want {
			t.Errorf("%s %v = %v, want %v", c.name, c.dims, got, c.want)
		}
	}
	latencies := 0
	for _, d := range data {
		if d.Name == metrics.KandyLatency && d.Dimensions[metrics.DimOperation] == "create_user" {
			latencies++
			if d.Unit != "Milliseconds" {
				t.Errorf("latency datum in %q, want Milliseconds: %+v", d.Unit, d)
			}
			if d.Value <= 0 {
				t.Errorf("latency datum of %v, want more than 0: %+v", d.Value, d)
			}
		}
	}
	if latencies != 3 {
		t.Errorf("%d create_user latencies, want 3 (one per HTTP call)", latencies)
	}
}
