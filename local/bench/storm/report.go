package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/bench/measure"
)

// budget is the target for the last account after Kandy's recovery: 20 s,
// or twice the outage when that is longer.
func budget(outage time.Duration) time.Duration { return max(20*time.Second, 2*outage) }

// summarize turns one storm's timeline into its numbers and targets.
func summarize(s storm, tl *timeline) []measure.Result {
	name := func(what string) string { return fmt.Sprintf("storm, Kandy down %.0f s: %s", s.Outage.Seconds(), what) }
	during := 0
	for _, t := range tl.SignedUp {
		if t >= tl.OutageStart && t <= tl.OutageEnd {
			during++
		}
	}
	rate := 0.0
	if len(tl.SignedUp) > 0 {
		rate = float64(len(tl.SignedUp)) / slices.Max(tl.SignedUp)
	}
	b := budget(s.Outage)
	recovery, note := lastAfterRecovery(s, tl)
	return []measure.Result{
		{Name: name("sign-ups confirmed during the outage"), Value: float64(during), Unit: "users", Note: fmt.Sprintf("of %d", s.N)},
		{Name: name("confirm errors"), Value: float64(tl.ConfirmErrs), Unit: "calls", Budget: "0", Pass: measure.Check(tl.ConfirmErrs == 0)},
		{Name: name("confirm latency p50"), Value: percentile(tl.ConfirmMS, 50), Unit: "ms", Note: "AdminConfirmSignUp, the trigger included"},
		{Name: name("confirm latency p99"), Value: percentile(tl.ConfirmMS, 99), Unit: "ms"},
		{Name: name("sign-ups per second"), Value: rate, Unit: "/s"},
		{Name: name("Kandy's recovery to the last user provisioned"), Value: recovery.Seconds(), Unit: "s",
			Budget: fmt.Sprintf("<= %.0f s", b.Seconds()), Pass: measure.Check(len(tl.Provisioned) == s.N && recovery <= b), Note: note},
		{Name: name("Kandy users"), Value: float64(tl.KandyUsers), Unit: "users", Budget: fmt.Sprintf("exactly %d, one per sign-up", s.N),
			Pass: measure.Check(tl.KandyUsers == s.N && tl.KandyMatched == s.N), Note: fmt.Sprintf("%d of them the sign-ups' own", tl.KandyMatched)},
		{Name: name("GET /users/me answering the user's account"), Value: float64(tl.GetMeOK), Unit: "users", Budget: fmt.Sprintf("%d of %d", s.N, s.N),
			Pass: measure.Check(tl.GetMeOK == s.N)},
	}
}

// lastAfterRecovery is the time from Kandy's recovery to the last account;
// when some never came, the whole wait, with a note.
func lastAfterRecovery(s storm, tl *timeline) (time.Duration, string) {
	if len(tl.Provisioned) < s.N {
		return s.Patience, fmt.Sprintf("only %d of %d provisioned %v after the recovery", len(tl.Provisioned), s.N, s.Patience)
	}
	last := slices.Max(tl.Provisioned)
	return time.Duration(max(0, last-tl.OutageEnd) * float64(time.Second)),
		fmt.Sprintf("Kandy down from %.1f s to %.1f s; the last account at %.1f s", tl.OutageStart, tl.OutageEnd, last)
}

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	return s[int(float64(len(s)-1)*p/100)]
}

// stormReport is every storm of one run.
type stormReport struct {
	MeasuredAt string           `json:"measured_at"`
	Conditions string           `json:"conditions"`
	Results    []measure.Result `json:"results"`
	Timelines  []*timeline      `json:"timelines"`
	storms     []storm
}

func (r *stormReport) add(s storm, tl *timeline) {
	for _, res := range summarize(s, tl) {
		status := ""
		if res.Pass != nil {
			status = map[bool]string{true: "  PASS", false: "  MISS"}[*res.Pass]
		}
		fmt.Printf("%-72s %10.2f %-6s %-26s%s\n", res.Name, res.Value, res.Unit, res.Budget, status)
		r.Results = append(r.Results, res)
	}
	r.Timelines, r.storms = append(r.Timelines, tl), append(r.storms, s)
}

func (r *stormReport) missed() int {
	n := 0
	for _, res := range r.Results {
		if res.Pass != nil && !*res.Pass {
			n++
		}
	}
	return n
}

// write writes storm-results.json and .md and draws recovery.svg in dir.
func (r *stormReport) write(dir string) error {
	r.MeasuredAt = time.Now().UTC().Format(time.RFC3339)
	raw, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "storm-results.json"), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	if err := drawRecovery(filepath.Join(dir, "recovery.svg"), r.storms, r.Timelines); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# The sign-up storm\n\n`make storm` on this machine (2 cores, shared), %s: %s, through make run's stack ", r.MeasuredAt[:10], r.Conditions)
	b.WriteString("(cognito-local's API, the trigger, goaws's retry queue, the retry worker), Kandy down once a third are confirmed.\n\n")
	b.WriteString("![Users signed up and provisioned over time, each outage shaded](recovery.svg)\n\n")
	b.WriteString("| what | measured | target | |\n|---|---|---|---|\n")
	for _, res := range r.Results {
		status := ""
		if res.Pass != nil {
			status = map[bool]string{true: "pass", false: "**missed**"}[*res.Pass]
		}
		fmt.Fprintf(&b, "| %s | %.2f %s | %s | %s |\n", res.Name, res.Value, res.Unit, res.Budget, status)
	}
	var notes []string
	for _, res := range r.Results {
		if res.Note != "" {
			notes = append(notes, fmt.Sprintf("- %s: %s", res.Name, res.Note))
		}
	}
	b.WriteString("\nNotes:\n" + strings.Join(notes, "\n") + "\n")
	return os.WriteFile(filepath.Join(dir, "storm-results.md"), []byte(b.String()), 0o644)
}
