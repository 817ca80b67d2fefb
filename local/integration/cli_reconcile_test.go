package integration

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/store"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// driftWorld is a user pool, a table and a simulator of its own, so a
// reconcile sees only what the test put there.
type driftWorld struct {
	pool  string
	table string
	sim   *localrun.Kandy
	env   map[string]string // the command's environment for this world
	svc   *provision.Service
	kc    *kandy.Client
	cog   *cip.Client
}

var worlds int

func newDriftWorld(t *testing.T, quota int) *driftWorld {
	t.Helper()
	worlds++
	w := &driftWorld{table: fmt.Sprintf("reconcile-%d", worlds), cog: processes.Cognito(stack.CognitoURL)}
	ctx := context.Background()
	var err error
	if w.sim, err = stack.NewKandy(0, quota, nil); err != nil {
		t.Fatal(err)
	}
	if err := stack.CreateTable(ctx, w.table); err != nil {
		t.Fatal(err)
	}
	stack.Secrets.Put("kandy-"+w.table, w.sim.Secret)
	w.env = map[string]string{"TABLE_NAME": w.table, "KANDY_SECRET_ID": "kandy-" + w.table, "KANDY_API_URL": w.sim.URL}
	p, err := w.cog.CreateUserPool(ctx, &cip.CreateUserPoolInput{PoolName: aws.String(t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	w.pool = aws.ToString(p.UserPool.Id)
	w.svc = w.service(t)
	key, secret := w.sim.ProjectKey()
	w.kc, _ = kandy.New(kandy.Options{BaseURL: w.sim.URL, Keys: projectKey{APIKey: key, APISecret: secret}})
	return w
}

type projectKey kandy.ProjectKey

func (k projectKey) ProjectKey(context.Context) (kandy.ProjectKey, error) {
	return kandy.ProjectKey(k), nil
}

// service is the domain over this world, as a function would build it.
func (w *driftWorld) service(t *testing.T) *provision.Service {
	t.Helper()
	getenv := func(k string) string {
		if v, ok := w.env[k]; ok {
			return v
		}
		return stack.env[k]
	}
	svc, err := localrun.Service(getenv)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// user adds a user to the pool, confirmed or not, and returns its sub.
func (w *driftWorld) user(t *testing.T, name string, confirmed bool) string {
	t.Helper()
	sub, err := w.addUser(name, confirmed)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func (w *driftWorld) addUser(name string, confirmed bool) (string, error) {
	ctx := context.Background()
	email := name + "@example.com"
	u, err := w.cog.AdminCreateUser(ctx, &cip.AdminCreateUserInput{
		UserPoolId: aws.String(w.pool), Username: aws.String(email), MessageAction: ciptypes.MessageActionTypeSuppress,
		TemporaryPassword: aws.String("Temporary-password-1"),
		UserAttributes:    []ciptypes.AttributeType{{Name: aws.String("email"), Value: aws.String(email)}},
	})
	if err != nil {
		return "", err
	}
	if confirmed {
		if _, err := w.cog.AdminSetUserPassword(ctx, &cip.AdminSetUserPasswordInput{UserPoolId: aws.String(w.pool),
			Username: aws.String(email), Password: aws.String("Permanent-password-1"), Permanent: true}); err != nil {
			return "", err
		}
	}
	for _, a := range u.User.Attributes {
		if aws.ToString(a.Name) == "sub" {
			return aws.ToString(a.Value), nil
		}
	}
	return "", fmt.Errorf("user %s has no sub", name)
}

func (w *driftWorld) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return cmd(t, w.env, append([]string{"reconcile", "--user-pool-id", w.pool, "--rate", "0", "--progress", "lines"}, args...)...)
}

var reportRow = regexp.MustCompile(`(?m)^  (in agreement|in progress|missing|gone|orphan|stale|broken|deleted_by_user) +(\d+)`)

// counts reads the report's table.
func reportCounts(t *testing.T, out string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, m := range reportRow.FindAllStringSubmatch(out, -1) {
		got[m[1]], _ = strconv.Atoi(m[2])
	}
	if len(got) != 8 {
		t.Fatalf("no report in:\n%s", out)
	}
	return got
}

func (w *driftWorld) ensure(t *testing.T, sub string) {
	t.Helper()
	if _, _, err := w.svc.Ensure(context.Background(), sub, provision.EnsureOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (w *driftWorld) kandyUser(t *testing.T, id string) {
	t.Helper()
	if _, err := w.kc.CreateUser(context.Background(), id, "US"); err != nil {
		t.Fatal(err)
	}
}

// seed puts one of each kind of drift in the world, two of most, and
// returns the report the seed must produce.
func (w *driftWorld) seed(t *testing.T) map[string]int {
	t.Helper()
	ctx := context.Background()
	acc := store.NewAccounts(stack.DB, w.table)
	uid := func(sub string) string { id, _ := userid.FromSub(sub); return id }
	for i := 0; i < 5; i++ {
		w.ensure(t, w.user(t, fmt.Sprintf("agree%d", i), true))
	}
	w.user(t, "missing0", true)
	w.kandyUser(t, uid(w.user(t, "missing1", true))) // a Kandy user left behind
	gone := w.user(t, "gone0", true)
	w.ensure(t, gone)
	if _, err := w.cog.AdminDeleteUser(ctx, &cip.AdminDeleteUserInput{UserPoolId: aws.String(w.pool), Username: aws.String("gone0@example.com")}); err != nil {
		t.Fatal(err)
	}
	w.kandyUser(t, uid("9d0c3e5a-0000-4000-8000-000000000001")) // a Kandy user of no user at all
	w.kandyUser(t, uid(w.user(t, "orphan0", false)))
	now := time.Now()
	stale := w.user(t, "stale0", true)
	if _, ok, err := acc.Claim(ctx, provision.Claim{Sub: stale, UserID: uid(stale), Token: "t", Now: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute)}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	staleDelete := w.user(t, "stale1", true)
	w.ensure(t, staleDelete)
	seen, _ := acc.Get(ctx, staleDelete)
	if err := acc.ClaimDelete(ctx, provision.Claim{Sub: staleDelete, UserID: uid(staleDelete), Token: "d", Now: now, ExpiresAt: now.Add(-time.Second)}, seen, provision.Ending{}); err != nil {
		t.Fatal(err)
	}
	for i, reissue := range []bool{false, true} {
		b := w.user(t, fmt.Sprintf("broken%d", i), true)
		w.ensure(t, b)
		must(t, w.kc.DeleteUser(ctx, uid(b)))
		if reissue { // restored from a backup that Kandy no longer matches
			w.kandyUser(t, uid(b))
		}
	}
	busy := w.user(t, "busy0", true)
	if _, ok, err := acc.Claim(ctx, provision.Claim{Sub: busy, UserID: uid(busy), Token: "b", Now: now, ExpiresAt: now.Add(time.Hour)}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	w.user(t, "unconfirmed0", false)
	w.kandyUser(t, "bob")                  // outside our id scheme
	deleted := w.user(t, "deleted0", true) // deleted their account: a choice, not drift
	w.ensure(t, deleted)
	must(t, func() error { _, err := w.svc.Delete(ctx, deleted); return err }())
	return map[string]int{"in agreement": 5, "in progress": 1, "missing": 2, "gone": 2, "orphan": 1, "stale": 2, "broken": 2, "deleted_by_user": 1}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
