package provision_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

func TestCodeOf(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want provision.Code
	}{
		{nil, ""},
		{fmt.Errorf("body: %w", provision.ErrInvalidRequest), provision.CodeInvalidRequest},
		{provision.ErrInvalidCountryCode, provision.CodeInvalidRequest},
		{provision.ErrUnauthorized, provision.CodeUnauthorized},
		{provision.ErrInvalidSub, provision.CodeUnauthorized},
		{provision.ErrNotProvisioned, provision.CodeNotProvisioned},
		{provision.ErrInProgress, provision.CodeInProgress},
		{provision.ErrQuotaExceeded, provision.CodeQuotaExceeded},
		{provision.ErrKandyUnavailable, provision.CodeKandyUnavailable},
		{provision.ErrKandyCredentialsRefused, provision.CodeUnavailable},
		{provision.ErrAccountClosed, provision.CodeAccountClosed},
		{provision.ErrAccountDeleted, provision.CodeNotProvisioned},
		{provision.ErrKandyUserExists, provision.CodeKandyUnavailable},
		{provision.ErrKandyNoSuchUser, provision.CodeKandyUnavailable},
		// A time-out is no one's until the dependency that timed out says so.
		{fmt.Errorf("call: %w", context.DeadlineExceeded), provision.CodeInternal},
		{&provision.DependencyError{Dependency: "dynamodb", Err: context.DeadlineExceeded}, provision.CodeUnavailable},
		{fmt.Errorf("reading: %w", &provision.DependencyError{Dependency: "kms", Err: errors.New("throttled")}), provision.CodeUnavailable},
		{provision.ErrAccountDeleted, provision.CodeNotProvisioned},
		{provision.ErrClaimLost, provision.CodeInternal},
		{errors.New("anything else"), provision.CodeInternal},
	} {
		if got := provision.CodeOf(tt.err); got != tt.want {
			t.Errorf("CodeOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	seen := map[provision.Code]bool{}
	for _, c := range provision.Codes {
		if seen[c] {
			t.Errorf("code %q is repeated", c)
		}
		if !regexp.MustCompile(`^[a-z_]+$`).MatchString(string(c)) {
			t.Errorf("code %q is badly spelled, want ^[a-z_]+$", c)
		}
		seen[c] = true
	}
}

func TestSecretsStayOutOfLogsAndPrints(t *testing.T) {
	c := provision.Credentials{FullUserID: "bob@d", UserPassword: "pw12345678", UserAPIKey: "UAKkey", UserAPISecret: "UASsecret"}
	r := provision.Record{UserID: "bob", UserPassword: "pw12345678", UserAPISecret: "UASsecret", Status: provision.StatusActive}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "creds", c, "record", r)
	out := buf.String() + fmt.Sprintf("%v %+v %#v %s", c, c, c, c)
	for _, secret := range []string{"pw12345678", "UASsecret"} {
		if strings.Contains(out, secret) {
			t.Fatalf("%q shows %q", out, secret)
		}
	}
	for _, visible := range []string{"bob", string(provision.StatusActive)} {
		if !strings.Contains(out, visible) {
			t.Errorf("%q should stay visible: %s", visible, out)
		}
	}
}

func TestClaimTokensAreRandom(t *testing.T) {
	a, b := provision.NewToken(), provision.NewToken()
	if a == b {
		t.Errorf("two tokens are the same: %q", a)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(a) {
		t.Errorf("token %q, want 32 hex digits", a)
	}
}

// A claim outlives its holder's deadline by the margin; without a
// deadline, or with one already past, it lasts the TTL.
func TestClaimExpiry(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithDeadline(context.Background(), w.clock.Now().Add(3*time.Second))
	defer cancel()
	w.provisioned(t)
	check := func(ctx context.Context, want time.Time) {
		t.Helper()
		w.kandy.deleteErr = provision.ErrKandyUnavailable
		_ = deleted(w.svc, ctx, sub)
		rec, _ := w.record(t)
		if !rec.ClaimExpiresAt.Equal(want) {
			t.Fatalf("claim expires %v, want %v", rec.ClaimExpiresAt, want)
		}
		w.clock.Add(w.svc.ClaimTTL() + time.Hour)
	}
	dl, _ := ctx.Deadline()
	check(ctx, dl.Add(w.svc.ClaimMargin()))
	check(context.Background(), w.clock.Now().Add(w.svc.ClaimTTL()))
	past, cancel2 := context.WithDeadline(context.Background(), w.clock.Now().Add(-time.Second))
	defer cancel2()
	check(past, w.clock.Now().Add(w.svc.ClaimTTL()))
}
