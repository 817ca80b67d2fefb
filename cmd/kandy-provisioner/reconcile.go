package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/app"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/config"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/reconcile"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/reconcilesources"
)

// reconcileFlags are the command's own flags.
type reconcileFlags struct {
	pool, fix, progress    string
	verbose, asJSON, force bool
	rate                   float64
	concurrency, segments  int
	maxDeletes             int
}

// Exit statuses of reconcile.
const (
	inAgreement  = 0
	driftRemains = 1
	failed       = 2
)

// reconcile compares Cognito, the table and Kandy, reports every
// difference, and repairs the classes --fix names.
func (c cli) reconcile(ctx context.Context, args []string) int {
	fs := c.flags("reconcile")
	var f reconcileFlags
	fs.StringVar(&f.pool, "user-pool-id", "", "the Cognito user pool (required)")
	fs.StringVar(&f.fix, "fix", "", "repair these classes, comma-separated: "+classNames())
	fs.BoolVar(&f.verbose, "verbose", false, "one line per difference, naming its sub and Kandy user id")
	fs.BoolVar(&f.asJSON, "json", false, "print the report, and what --fix did, as JSON")
	fs.Float64Var(&f.rate, "rate", 5, "repairs started per second, at most; 0 for no limit")
	fs.IntVar(&f.concurrency, "concurrency", 4, "repairs under way at once")
	fs.IntVar(&f.segments, "segments", 4, "table segments scanned in parallel")
	fs.IntVar(&f.maxDeletes, "max-deletes", -1, "refuse a fix that deletes more Kandy users than this (default 10, or 5% of the accounts, whichever is larger)")
	fs.BoolVar(&f.force, "force", false, "repair past --max-deletes, or when Cognito lists no users at all (logged)")
	fs.StringVar(&f.progress, "progress", "auto", "auto (a bar on a terminal, lines otherwise), bar or lines")
	readConfig := c.serviceFlags(fs)
	if err := fs.Parse(args); err != nil {
		return failed
	}
	classes, err := parseClasses(f.fix)
	if err != nil || f.pool == "" || f.rate < 0 || f.concurrency < 1 || f.segments < 1 || !validProgress(f.progress) {
		fmt.Fprintf(c.stderr, "reconcile: --user-pool-id is required; --fix takes %s; --rate >= 0; --concurrency and --segments >= 1; --progress auto, bar or lines\n", classNames())
		return failed
	}
	cfg, err := readConfig()
	if err != nil {
		fmt.Fprintln(c.stderr, "reconcile:", err)
		return failed
	}
	if cfg.KMSKeyID == "" && (classes[reconcile.Missing] || classes[reconcile.Stale] || classes[reconcile.Broken]) {
		fmt.Fprintln(c.stderr, "reconcile: --kms-key-id (or KMS_KEY_ID) is required to provision: the stack's CredentialsKeyArn output")
		return failed
	}
	awsCfg, ok := c.awsConfig(ctx, "reconcile")
	if !ok {
		return failed
	}
	return c.runReconcile(ctx, f, classes, cfg, awsCfg)
}

func (c cli) runReconcile(ctx context.Context, f reconcileFlags, classes map[reconcile.Class]bool, cfg config.Config, awsCfg aws.Config) int {
	users := cip.NewFromConfig(awsCfg)
	k, err := app.NewKandy(awsCfg, cfg, nil)
	if err != nil {
		fmt.Fprintln(c.stderr, "reconcile:", err)
		return failed
	}
	src := reconcilesources.New(users, f.pool, dynamodb.NewFromConfig(awsCfg), cfg.TableName, f.segments, k)
	if !f.asJSON {
		fmt.Fprintf(c.stderr, "reconcile: reading the table %s, Kandy and the user pool %s\n", cfg.TableName, f.pool)
	}
	rep, err := reconcile.Compare(ctx, src, time.Now())
	if err != nil {
		fmt.Fprintln(c.stderr, "reconcile:", err)
		return failed
	}
	out := reconcileOutput{Report: rep, DriftRemaining: rep.Drift()}
	if len(classes) > 0 {
		log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		svc, err := app.NewService(awsCfg, cfg, log, nil, fieldcrypt.KMS)
		if err != nil {
			fmt.Fprintln(c.stderr, "reconcile:", err)
			return failed
		}
		o := reconcile.FixOptions{Classes: classes, Concurrency: f.concurrency, Rate: f.rate, MaxDeletes: f.maxDeletes,
			Force: f.force, StillGone: reconcilesources.StillGone(users, f.pool), Log: log}
		if o.MaxDeletes < 0 {
			o.MaxDeletes = max(10, rep.Records/20)
		}
		if out.Fix, err = c.fix(ctx, rep, svc, o, f.progress); err != nil {
			c.printReport(f, out)
			fmt.Fprintln(c.stderr, "reconcile:", err)
			return failed
		}
		out.DriftRemaining = rep.Drift() - repaired(out.Fix)
	}
	c.printReport(f, out)
	if out.DriftRemaining > 0 {
		return driftRemains
	}
	return inAgreement
}

// reconcileOutput is what --json prints.
type reconcileOutput struct {
	Report         reconcile.Report      `json:"report"`
	Fix            *reconcile.FixSummary `json:"fix,omitempty"`
	DriftRemaining int                   `json:"drift_remaining"`
}

// fix runs the repairs with a progress display.
func (c cli) fix(ctx context.Context, rep reconcile.Report, svc reconcile.Repairs, o reconcile.FixOptions, mode string) (*reconcile.FixSummary, error) {
	if err := reconcile.Check(rep, o); err != nil {
		return nil, err
	}
	total := len(reconcile.Selected(rep, o))
	done := func() {}
	if c.progressMode(mode) == "bar" {
		bar := c.bar(int64(total), "reconcile", "repairs")
		o.Progress = func(s reconcile.FixSummary) {
			bar.Describe(fmt.Sprintf("reconcile: %d repaired, %d skipped, %d failed", repaired(&s), s.Skipped, len(s.Failures)))
			_ = bar.Set(repaired(&s) + s.Skipped + len(s.Failures))
		}
		done = func() { _ = bar.Finish(); fmt.Fprintln(c.stderr) }
	} else {
		o.Progress = func(s reconcile.FixSummary) {
			if n := repaired(&s) + s.Skipped + len(s.Failures); n%linesEvery == 0 || n == total {
				fmt.Fprintf(c.stderr, "reconcile: %d of %d: %d repaired, %d skipped, %d failed\n", n, total, repaired(&s), s.Skipped, len(s.Failures))
			}
		}
	}
	sum, err := reconcile.Fix(ctx, rep, svc, o)
	done()
	return &sum, err
}

func repaired(s *reconcile.FixSummary) int {
	n := 0
	for _, v := range s.Repaired {
		n += v
	}
	return n
}

// classNames lists the classes --fix repairs: every class that is drift.
func classNames() string {
	var names []string
	for _, c := range reconcile.Classes {
		if c.IsDrift() {
			names = append(names, string(c))
		}
	}
	return strings.Join(names, ",")
}

// parseClasses reads --fix: a comma-separated list of classes.
func parseClasses(s string) (map[reconcile.Class]bool, error) {
	out := map[reconcile.Class]bool{}
	if s == "" {
		return out, nil
	}
	known := map[string]bool{}
	for _, c := range reconcile.Classes {
		known[string(c)] = c.IsDrift()
	}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if !known[name] {
			return nil, errors.New("no repair for class " + name)
		}
		out[reconcile.Class(name)] = true
	}
	return out, nil
}

func validProgress(mode string) bool { return mode == "auto" || mode == "bar" || mode == "lines" }

// printReport writes the report, and the fix if one ran, as a table (one
// line per item with --verbose) or as JSON.
func (c cli) printReport(f reconcileFlags, out reconcileOutput) {
	if f.asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return
	}
	w, rep := c.stdout, out.Report
	fmt.Fprintf(w, "reconcile of %s: %d Cognito users, %d records, %d Kandy users (%d outside our id scheme, never touched)\n",
		f.pool, rep.CognitoUsers, rep.Records, rep.KandyUsers, len(rep.Foreign))
	row := func(label string, n int, extra string) { fmt.Fprintf(w, "  %-16s %6d%s\n", label, n, extra) }
	row("in agreement", rep.InAgreement, "")
	row("in progress", rep.InProgress, "")
	for _, cl := range reconcile.Classes {
		extra := ""
		if out.Fix != nil && out.Fix.Repaired[cl] > 0 {
			extra = fmt.Sprintf("   (%d repaired)", out.Fix.Repaired[cl])
		}
		row(string(cl), rep.Count(cl), extra)
	}
	if f.verbose {
		for _, it := range rep.Items {
			fmt.Fprintf(w, "  %-15s sub=%s user_id=%s  %s\n", it.Class, it.Sub, it.UserID, it.Why)
		}
		for _, id := range rep.Foreign {
			fmt.Fprintf(w, "  %-15s user_id=%s  a Kandy user outside our id scheme\n", "foreign", id)
		}
	}
	if s := out.Fix; s != nil {
		fmt.Fprintf(w, "fix: %d repaired, %d skipped (changed since read), %d failed\n", repaired(s), s.Skipped, len(s.Failures))
		for _, fl := range s.Failures {
			fmt.Fprintf(w, "  failed %-8s sub=%s user_id=%s  %s\n", fl.Class, fl.Sub, fl.UserID, fl.Reason)
		}
		if s.Stopped != nil {
			fmt.Fprintln(w, s.Stopped)
		}
	}
	fmt.Fprintf(w, "drift remaining: %d\n", out.DriftRemaining)
}
