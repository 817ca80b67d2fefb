package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/backfill"
)

func TestCheckpointFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.json")
	if tok, err := readCheckpoint(path, "p1", false); err != nil {
		t.Fatalf("no file: %v", err)
	} else if tok != "" {
		t.Errorf("no file: token %q, want none", tok)
	}
	if err := writeCheckpoint(path, "p1", "page-2"); err != nil {
		t.Fatal(err)
	}
	if tok, err := readCheckpoint(path, "p1", false); err != nil {
		t.Fatalf("resume: %v", err)
	} else if tok != "page-2" {
		t.Errorf("resume: token %q, want %q", tok, "page-2")
	}
	if tok, err := readCheckpoint(path, "p1", true); err != nil {
		t.Fatalf("--restart: %v", err)
	} else if tok != "" {
		t.Errorf("--restart: token %q, want none", tok)
	}
	if _, err := readCheckpoint(path, "p2", false); err == nil || !strings.Contains(err.Error(), "is for pool p1") {
		t.Fatalf("another pool's checkpoint: %v", err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readCheckpoint(path, "p1", false); err == nil {
		t.Fatal("garbage accepted")
	}
	if err := writeCheckpoint(path, "p1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("the end of a walk keeps the checkpoint")
	}
}

type estimate int32

func (e estimate) DescribeUserPool(context.Context, *cognitoidentityprovider.DescribeUserPoolInput, ...func(*cognitoidentityprovider.Options)) (*cognitoidentityprovider.DescribeUserPoolOutput, error) {
	return &cognitoidentityprovider.DescribeUserPoolOutput{UserPool: &ciptypes.UserPoolType{EstimatedNumberOfUsers: int32(e)}}, nil
}

func TestProgressBarUsesThePoolEstimate(t *testing.T) {
	var errOut strings.Builder
	c := cli{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: &errOut}
	view := c.progress(context.Background(), estimate(4), "p", "bar")
	for i := 1; i <= 4; i++ {
		view.update(backfill.Summary{Seen: i, Created: i})
	}
	view.done()
	expectContains(t, "bar", errOut.String(), "100%", "4/4")
	errOut.Reset()
	view = c.progress(context.Background(), estimate(4), "p", "auto")
	view.update(backfill.Summary{Seen: 100, Created: 100})
	if !strings.HasPrefix(errOut.String(), "backfill: 100 users: 100 created") {
		t.Fatalf("not a terminal, so lines: %q", errOut.String())
	}
}

// expectContains reports each of subs that s, named by what, lacks.
func expectContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s lacks %q:\n%s", what, sub, s)
		}
	}
}
