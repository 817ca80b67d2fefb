// Command storm is the sign-up storm: N users sign up through make run's
// stack (the Cognito API of cognito-local, the post-confirmation trigger,
// the retry queue in goaws and the retry worker, each function a pool of
// emulators) while Kandy is down for a while in the middle. For each
// outage it records the confirmation latency, the sign-up rate, the time
// from Kandy's recovery to the last account, the Kandy users against the
// sign-ups and every user's GET /users/me; it writes
// bench/storm-results.{md,json} and draws bench/recovery.svg, and exits
// non-zero when a target is missed. `make storm` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
)

func main() {
	n := flag.Int("n", 60, "sign-ups per storm")
	clients := flag.Int("clients", 4, "sign-ups under way at once")
	concurrency := flag.Int("concurrency", 4, "emulators per function, as make run's FUNCTION_CONCURRENCY")
	outages := flag.String("outages", "4s,60s", "comma-separated Kandy outage lengths, one storm each")
	dir := flag.String("dir", filepath.Join(processes.RepoRoot(), "local", "bench"), "where to write storm-results.{md,json} and recovery.svg")
	flag.Parse()
	missed, err := run(*n, *clients, *concurrency, *outages, *dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "storm:", err)
		os.Exit(1)
	}
	if missed > 0 {
		fmt.Fprintf(os.Stderr, "\nstorm: %d target(s) MISSED; see %s\n", missed, filepath.Join(*dir, "storm-results.md"))
		os.Exit(1)
	}
}

func run(n, clients, concurrency int, outages, dir string) (int, error) {
	if n < 1 || clients < 1 || concurrency < 1 {
		return 0, fmt.Errorf("-n, -clients and -concurrency must be at least 1")
	}
	logFile, err := os.CreateTemp("", "kandy-storm-*.log")
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	logs := &processes.LockedWriter{W: logFile}
	var report stormReport
	report.Conditions = fmt.Sprintf("%d sign-ups, %d at a time, FUNCTION_CONCURRENCY %d", n, clients, concurrency)
	for _, o := range strings.Split(outages, ",") {
		outage, err := time.ParseDuration(strings.TrimSpace(o))
		if err != nil || outage <= 0 {
			return 0, fmt.Errorf("outage %q is not a positive duration", o)
		}
		s := storm{N: n, Clients: clients, Concurrency: concurrency, Outage: outage, Patience: budget(outage) + 200*time.Second}
		fmt.Printf("storm: %d sign-ups, Kandy down %.0f s once a third are confirmed…\n", n, outage.Seconds())
		tl, err := runStorm(s, logs)
		if err != nil {
			return 0, fmt.Errorf("storm with a %v outage: %w (function logs: %s)", outage, err, logFile.Name())
		}
		report.add(s, tl)
	}
	fmt.Printf("function logs: %s\n", logFile.Name())
	if err := report.write(dir); err != nil {
		return 0, err
	}
	return report.missed(), nil
}

// runStorm runs one storm on a stack of its own.
func runStorm(s storm, logs io.Writer) (*timeline, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.Outage+s.Patience+5*time.Minute)
	defer cancel()
	e, err := start(ctx, s, logs)
	if err != nil {
		return nil, err
	}
	defer e.st.Stop()
	return e.run(ctx, s)
}
