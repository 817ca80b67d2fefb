package main

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/bench/measure"
)

func TestBudget(t *testing.T) {
	for outage, want := range map[time.Duration]time.Duration{4 * time.Second: 20 * time.Second, 10 * time.Second: 20 * time.Second, time.Minute: 2 * time.Minute} {
		if got := budget(outage); got != want {
			t.Errorf("budget(%v) = %v, want %v", outage, got, want)
		}
	}
}

// sample is three users, Kandy down from 1 s to 5 s.
func sample() (storm, *timeline) {
	s := storm{N: 3, Outage: 4 * time.Second, Patience: time.Minute}
	return s, &timeline{OutageS: 4, OutageStart: 1, OutageEnd: 5, SignedUp: []float64{0.5, 1.5, 2},
		Provisioned: []float64{0.6, 9, 24.5}, ConfirmMS: []float64{30, 10, 20}, KandyUsers: 3, KandyMatched: 3, GetMeOK: 3}
}

func byName(rs []measure.Result) map[string]measure.Result {
	m := map[string]measure.Result{}
	for _, r := range rs {
		m[strings.TrimPrefix(r.Name, "storm, Kandy down 4 s: ")] = r
	}
	return m
}

func TestSummarize(t *testing.T) {
	s, tl := sample()
	got := byName(summarize(s, tl))
	for name, want := range map[string]float64{
		"sign-ups confirmed during the outage": 2, "confirm latency p50": 20, "confirm latency p99": 20,
		"sign-ups per second": 1.5, "Kandy's recovery to the last user provisioned": 19.5, "Kandy users": 3,
		"GET /users/me answering the user's account": 3, "confirm errors": 0,
	} {
		if r, ok := got[name]; !ok || r.Value != want {
			t.Errorf("%s = %+v, want %v", name, r, want)
		}
	}
	for name, r := range got {
		if r.Pass != nil && !*r.Pass {
			t.Errorf("%s missed: %+v", name, r)
		}
	}
}

func TestSummarizeMisses(t *testing.T) {
	for what, spoil := range map[string]func(*timeline){
		"Kandy's recovery to the last user provisioned": func(tl *timeline) { tl.Provisioned[2] = 25.5 },
		"Kandy users": func(tl *timeline) { tl.KandyMatched = 2 },
		"GET /users/me answering the user's account": func(tl *timeline) { tl.GetMeOK = 2 },
		"confirm errors": func(tl *timeline) { tl.ConfirmErrs = 1 },
	} {
		s, tl := sample()
		spoil(tl)
		if r := byName(summarize(s, tl))[what]; r.Pass == nil || *r.Pass {
			t.Errorf("%s: %+v, want a miss", what, r)
		}
	}
	s, tl := sample()
	tl.Provisioned = tl.Provisioned[:2]
	r := byName(summarize(s, tl))["Kandy's recovery to the last user provisioned"]
	if r.Pass == nil || *r.Pass || r.Value != 60 || !strings.Contains(r.Note, "only 2 of 3") {
		t.Errorf("two of three provisioned: %+v, want a miss after the whole wait", r)
	}
}

// TestDrawRecovery: the chart is well-formed SVG with a panel per storm,
// its title, the legend and the shaded outage.
func TestDrawRecovery(t *testing.T) {
	s, tl := sample()
	long, ltl := sample()
	long.Outage, ltl.OutageEnd = time.Minute, 61
	ltl.Provisioned = ltl.Provisioned[:2]
	path := filepath.Join(t.TempDir(), "recovery.svg")
	if err := drawRecovery(path, []storm{s, long}, []*timeline{tl, ltl}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for dec := xml.NewDecoder(strings.NewReader(string(raw))); ; {
		if _, err := dec.Token(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("not well-formed SVG: %v", err)
		}
	}
	svg := string(raw)
	for _, want := range []string{"Kandy down 4 s", "all 3 provisioned 19.5 s after it came back", "Kandy down 60 s", "2 of 3 provisioned",
		"signed up (confirmed)", "provisioned (Kandy account stored)", "fill-opacity:0.23529"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
}
