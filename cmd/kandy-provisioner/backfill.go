package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/app"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/backfill"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/fieldcrypt"
)

// backfill gives every confirmed user of a pool a Kandy account. Exit
// status: 0 when every user has one (or would, with --dry-run), 1 when any
// failed or the run stopped, 2 for bad usage.
func (c cli) backfill(ctx context.Context, args []string) int {
	fs := c.flags("backfill")
	pool := fs.String("user-pool-id", "", "the Cognito user pool (required)")
	concurrency := fs.Int("concurrency", 4, "users provisioned at once")
	rate := fs.Float64("rate", 5, "new Kandy users per second, at most; 0 for no limit")
	dryRun := fs.Bool("dry-run", false, "read the pool and the table, change nothing, and say what would be created")
	checkpoint := fs.String("checkpoint", "", "file recording the walk's progress (default kandy-backfill-<pool>.json in the current directory)")
	restart := fs.Bool("restart", false, "ignore an existing checkpoint and walk the pool from the start")
	progress := fs.String("progress", "auto", "auto (a bar on a terminal, lines otherwise), bar or lines")
	readConfig := c.serviceFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *pool == "" || *concurrency < 1 || *rate < 0 || (*progress != "auto" && *progress != "bar" && *progress != "lines") {
		fmt.Fprintln(c.stderr, "backfill: --user-pool-id is required; --concurrency must be >= 1, --rate >= 0, --progress auto, bar or lines")
		return 2
	}
	cfg, err := readConfig()
	if err != nil {
		fmt.Fprintln(c.stderr, "backfill:", err)
		return 2
	}
	if cfg.KMSKeyID == "" && !*dryRun {
		fmt.Fprintln(c.stderr, "backfill: --kms-key-id (or KMS_KEY_ID) is required: the stack's CredentialsKeyArn output; the functions seal credentials with it too")
		return 2
	}
	if *checkpoint == "" {
		*checkpoint = "kandy-backfill-" + strings.Map(safeRune, *pool) + ".json"
	}
	awsCfg, ok := c.awsConfig(ctx, "backfill")
	if !ok {
		return 1
	}
	log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := app.NewService(awsCfg, cfg, log, nil, fieldcrypt.KMS)
	if err != nil {
		fmt.Fprintln(c.stderr, "backfill:", err)
		return 1
	}
	users := cip.NewFromConfig(awsCfg)

	o := backfill.Options{UserPoolID: *pool, Concurrency: *concurrency, Rate: *rate, DryRun: *dryRun,
		Log: slog.New(slog.NewTextHandler(c.stderr, nil))}
	if !*dryRun {
		start, err := readCheckpoint(*checkpoint, *pool, *restart)
		if err != nil {
			fmt.Fprintln(c.stderr, "backfill:", err)
			return 1
		}
		if start != "" {
			fmt.Fprintf(c.stderr, "backfill: resuming from %s (--restart to walk the whole pool)\n", *checkpoint)
		}
		o.StartToken = start
		o.Checkpoint = func(next string) error { return writeCheckpoint(*checkpoint, *pool, next) }
	}
	show := c.progress(ctx, users, *pool, *progress)
	o.Progress = show.update
	sum, err := backfill.Run(ctx, users, svc, o)
	show.done()
	c.summarize(*pool, sum, *dryRun)
	switch {
	case err != nil:
		fmt.Fprintln(c.stderr, "backfill:", err)
		if errors.Is(err, context.Canceled) && !*dryRun {
			fmt.Fprintf(c.stderr, "backfill: interrupted; run again to resume from %s\n", *checkpoint)
		}
		return 1
	case sum.Stopped != nil:
		fmt.Fprintf(c.stderr, "backfill: %v\nbackfill: run again once that is fixed; it resumes from %s\n", sum.Stopped, *checkpoint)
		return 1
	case len(sum.Failures) > 0:
		return 1
	}
	return 0
}

func safeRune(r rune) rune {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
		return r
	}
	return '_'
}

// checkpointFile is what a checkpoint records: the next page of one pool.
type checkpointFile struct {
	UserPoolID string    `json:"user_pool_id"`
	NextPage   string    `json:"next_page"`
	SavedAt    time.Time `json:"saved_at"`
}

func readCheckpoint(path, pool string, restart bool) (string, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && restart) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading checkpoint: %w", err)
	}
	var cp checkpointFile
	if err := json.Unmarshal(raw, &cp); err != nil || cp.NextPage == "" {
		return "", fmt.Errorf("checkpoint %s is not one this tool wrote; remove it or pass --restart", path)
	}
	if cp.UserPoolID != pool {
		return "", fmt.Errorf("checkpoint %s is for pool %s; pass --checkpoint or --restart", path, cp.UserPoolID)
	}
	return cp.NextPage, nil
}

// writeCheckpoint records the next page, replacing the file atomically so
// an interrupted write leaves the previous one; at the end it removes it.
func writeCheckpoint(path, pool, next string) error {
	if next == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	raw, _ := json.Marshal(checkpointFile{UserPoolID: pool, NextPage: next, SavedAt: time.Now().UTC()})
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kandy-backfill-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// progressView shows a run's progress: a bar on a terminal, a line every
// linesEvery users otherwise.
type progressView struct {
	update func(backfill.Summary)
	done   func()
}

// DescribeUserPoolAPI gives the pool's estimated size, for the bar.
type DescribeUserPoolAPI interface {
	DescribeUserPool(ctx context.Context, in *cip.DescribeUserPoolInput, opts ...func(*cip.Options)) (*cip.DescribeUserPoolOutput, error)
}

func (c cli) progress(ctx context.Context, api DescribeUserPoolAPI, pool, mode string) progressView {
	if c.progressMode(mode) == "lines" {
		return progressView{
			update: func(s backfill.Summary) {
				if s.Seen%linesEvery == 0 {
					fmt.Fprintf(c.stderr, "backfill: %s\n", counts(s))
				}
			},
			done: func() {},
		}
	}
	total := int64(-1) // unknown: a spinner
	if out, err := api.DescribeUserPool(ctx, &cip.DescribeUserPoolInput{UserPoolId: aws.String(pool)}); err == nil && out.UserPool.EstimatedNumberOfUsers > 0 {
		total = int64(out.UserPool.EstimatedNumberOfUsers)
	}
	bar := c.bar(total, "backfill", "users")
	return progressView{
		update: func(s backfill.Summary) {
			bar.Describe(fmt.Sprintf("backfill: %d created, %d present, %d failed", s.Created+s.WouldCreate, s.AlreadyPresent, len(s.Failures)))
			_ = bar.Set(s.Seen)
		},
		done: func() { _ = bar.Finish(); fmt.Fprintln(c.stderr) },
	}
}

func counts(s backfill.Summary) string {
	return fmt.Sprintf("%d users: %d created, %d already present, %d would be created, %d not confirmed, %d deleted their account, %d failed",
		s.Seen, s.Created, s.AlreadyPresent, s.WouldCreate, s.NotConfirmed, s.Deleted, len(s.Failures))
}

// maxListed bounds the failed users listed by name; the rest are counted.
const maxListed = 20

func (c cli) summarize(pool string, s backfill.Summary, dryRun bool) {
	w := c.stdout
	title := "backfill"
	if dryRun {
		title = "backfill (dry run: nothing changed)"
	}
	fmt.Fprintf(w, "%s of %s: %d users\n", title, pool, s.Seen)
	row := func(label string, n int) { fmt.Fprintf(w, "  %-18s %6d\n", label, n) }
	if dryRun {
		row("would be created", s.WouldCreate)
	} else {
		row("created", s.Created)
	}
	row("already present", s.AlreadyPresent)
	row("not confirmed", s.NotConfirmed)
	row("deleted account", s.Deleted)
	row("failed", len(s.Failures))
	if len(s.Failures) == 0 {
		return
	}
	byReason := map[string][]string{}
	for _, f := range s.Failures {
		who := f.Username
		if f.Sub != "" && f.Sub != f.Username {
			who += " (" + f.Sub + ")"
		}
		byReason[f.Reason] = append(byReason[f.Reason], who)
	}
	reasons := make([]string, 0, len(byReason))
	for r := range byReason {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	sort.SliceStable(reasons, func(i, j int) bool { return len(byReason[reasons[i]]) > len(byReason[reasons[j]]) })
	fmt.Fprintln(w, "failures, by reason:")
	listed := 0
	for _, r := range reasons {
		who := byReason[r]
		sort.Strings(who)
		fmt.Fprintf(w, "  %d × %s\n", len(who), r)
		for _, u := range who {
			if listed == maxListed {
				break
			}
			fmt.Fprintf(w, "      %s\n", u)
			listed++
		}
	}
	if listed < len(s.Failures) {
		fmt.Fprintf(w, "  (%d more not listed)\n", len(s.Failures)-listed)
	}
}
