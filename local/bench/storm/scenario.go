package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
	"github.com/kandy-provisioner/kandy-provisioner/local/authorizer"
	"github.com/kandy-provisioner/kandy-provisioner/local/gateway"
	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// password meets the template's password policy; local users only.
const password = "Storm-passw0rd-local"

// storm is one run: N users sign up, Clients at a time, through make run's
// stack with FUNCTION_CONCURRENCY Concurrency, and Kandy is down for
// Outage once a third of them are confirmed.
type storm struct {
	N, Clients, Concurrency int
	Outage                  time.Duration
	// Patience bounds the wait for the last account after Kandy's recovery.
	Patience time.Duration
}

// timeline is what one storm saw; times are seconds since its first
// sign-up began.
type timeline struct {
	OutageS     float64   `json:"outage_s"`
	OutageStart float64   `json:"outage_start_s"`
	OutageEnd   float64   `json:"outage_end_s"`
	SignedUp    []float64 `json:"signed_up_s"`   // each confirmation's end
	Provisioned []float64 `json:"provisioned_s"` // each account first seen ACTIVE
	ConfirmMS   []float64 `json:"confirm_ms"`    // each AdminConfirmSignUp, trigger included
	ConfirmErrs int       `json:"confirm_errors"`
	// KandyUsers is the simulator's user count; KandyMatched, how many of
	// the users' Kandy ids it holds.
	KandyUsers   int `json:"kandy_users"`
	KandyMatched int `json:"kandy_matched"`
	// GetMeOK counts users whose GET /users/me answered 200 with their
	// own Kandy user id.
	GetMeOK int `json:"get_users_me_ok"`
}

// env is make run's stack, as cmd/kandy-local starts it, on free ports.
type env struct {
	st     *localrun.Stack
	pool   *localrun.UserPool
	apiURL string
	http   *http.Client
}

func start(ctx context.Context, s storm, logs io.Writer) (*env, error) {
	st, err := localrun.Start(ctx, localrun.Options{SQS: true, KandyQuota: 10 * s.N})
	if err != nil {
		return nil, err
	}
	e := &env{st: st, http: &http.Client{Timeout: 30 * time.Second}}
	log := slog.New(slog.NewTextHandler(logs, nil))
	fns, err := st.StartFunctions(localrun.FunctionsOptions{Concurrency: s.Concurrency, Log: log,
		Output: func(string) io.Writer { return logs }})
	if err == nil {
		e.pool, err = st.StartUserPool(ctx, localrun.UserPoolOptions{LambdaURL: fns.URL})
	}
	if err == nil {
		e.apiURL, err = e.serveAPI(ctx, fns, log)
	}
	if err != nil {
		st.Stop()
		return nil, err
	}
	return e, nil
}

// serveAPI serves the template's HTTP API of ApiFunction behind its JWT
// authorizer, as make run does.
func (e *env) serveAPI(ctx context.Context, fns *localrun.Functions, log *slog.Logger) (string, error) {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		return "", err
	}
	params, err := samtemplate.ParameterDefaults(samtemplate.Path())
	if err != nil {
		return "", err
	}
	api, err := gateway.FromTemplate(tpl, "ApiFunction", params)
	if err != nil {
		return "", err
	}
	verifier, err := authorizer.FetchVerifier(ctx, e.http, e.pool.Issuer, []string{e.pool.ClientID})
	if err != nil {
		return "", err
	}
	return e.st.Serve(0, &gateway.Gateway{API: api, Verifier: verifier, Function: fns.Pools["ApiFunction"], Log: log})
}

// run signs the users up with the outage in the middle, waits for their
// accounts, then checks Kandy and every user's GET /users/me.
func (e *env) run(ctx context.Context, s storm) (*timeline, error) {
	tl := &timeline{OutageS: s.Outage.Seconds()}
	t0 := time.Now()
	since := func(t time.Time) float64 { return t.Sub(t0).Seconds() }
	watch := e.watchAccounts(ctx, t0)
	outage := e.outage(s, tl, since)
	subs := e.signUps(ctx, s, tl, since, outage)
	recovered := <-outage.over
	found := watch.until(s.N, recovered.Add(s.Patience))
	for _, at := range found {
		tl.Provisioned = append(tl.Provisioned, since(at))
	}
	sort.Float64s(tl.Provisioned)
	sort.Float64s(tl.SignedUp)
	e.checkKandy(tl, subs)
	return tl, e.checkGetMe(ctx, tl, subs)
}

// outageControl starts the outage once and reports when it ended.
type outageControl struct {
	begin func()
	over  chan time.Time
}

func (e *env) outage(s storm, tl *timeline, since func(time.Time) float64) *outageControl {
	o := &outageControl{over: make(chan time.Time, 1)}
	var once sync.Once
	o.begin = func() {
		once.Do(func() {
			e.st.Kandy.Inject("", kandysim.FaultHTTP500, math.MaxInt)
			tl.OutageStart = since(time.Now())
			time.AfterFunc(s.Outage, func() {
				e.st.Kandy.ClearFaults()
				now := time.Now()
				tl.OutageEnd = since(now)
				o.over <- now
			})
		})
	}
	return o
}

// signUps runs the clients; the outage begins when a third of the users
// are confirmed. It returns the users' subs by email.
func (e *env) signUps(ctx context.Context, s storm, tl *timeline, since func(time.Time) float64, o *outageControl) map[string]string {
	jobs := make(chan int, s.N)
	for i := range s.N {
		jobs <- i
	}
	close(jobs)
	var mu sync.Mutex
	var confirmed atomic.Int64
	subs := map[string]string{}
	if s.N < 3 {
		o.begin()
	}
	var wg sync.WaitGroup
	for range s.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				email := fmt.Sprintf("storm%04d@example.com", i)
				sub, took, err := e.signUp(ctx, email)
				mu.Lock()
				if err != nil {
					tl.ConfirmErrs++
				} else {
					subs[email] = sub
					tl.SignedUp, tl.ConfirmMS = append(tl.SignedUp, since(time.Now())), append(tl.ConfirmMS, float64(took.Microseconds())/1000)
				}
				mu.Unlock()
				if confirmed.Add(1) >= int64(s.N/3) {
					o.begin()
				}
			}
		}()
	}
	wg.Wait()
	o.begin() // every sign-up failed before a third: still measure recovery
	return subs
}

// signUp signs email up and confirms it as an administrator does, which
// runs the post-confirmation trigger; it times the confirmation.
func (e *env) signUp(ctx context.Context, email string) (string, time.Duration, error) {
	c := e.pool.Client
	out, err := c.SignUp(ctx, &cip.SignUpInput{ClientId: aws.String(e.pool.ClientID), Username: aws.String(email), Password: aws.String(password),
		UserAttributes: []ciptypes.AttributeType{{Name: aws.String("email"), Value: aws.String(email)}}})
	if err != nil {
		return "", 0, err
	}
	start := time.Now()
	_, err = c.AdminConfirmSignUp(ctx, &cip.AdminConfirmSignUpInput{UserPoolId: aws.String(e.pool.ID), Username: aws.String(email)})
	return aws.ToString(out.UserSub), time.Since(start), err
}

// accountWatch records when each account is first seen ACTIVE.
type accountWatch struct {
	mu    sync.Mutex
	first map[string]time.Time
	stop  context.CancelFunc
}

// watchAccounts scans the table every 200 ms.
func (e *env) watchAccounts(ctx context.Context, t0 time.Time) *accountWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &accountWatch{first: map[string]time.Time{}, stop: cancel}
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if out, err := e.st.DB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(e.st.Table), ConsistentRead: aws.Bool(true)}); err == nil {
				w.saw(out.Items, time.Now())
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *accountWatch) saw(items []map[string]ddbtypes.AttributeValue, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, it := range items {
		sub, _ := it["sub"].(*ddbtypes.AttributeValueMemberS)
		status, _ := it["status"].(*ddbtypes.AttributeValueMemberS)
		if sub == nil || status == nil || status.Value != "ACTIVE" {
			continue
		}
		if _, seen := w.first[sub.Value]; !seen {
			w.first[sub.Value] = now
		}
	}
}

// until waits for n accounts or the deadline, stops watching and returns
// what it saw.
func (w *accountWatch) until(n int, deadline time.Time) map[string]time.Time {
	defer w.stop()
	for ; time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		w.mu.Lock()
		done := len(w.first) >= n
		w.mu.Unlock()
		if done {
			break
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]time.Time, len(w.first))
	for k, v := range w.first {
		out[k] = v
	}
	return out
}

func (e *env) checkKandy(tl *timeline, subs map[string]string) {
	held := map[string]bool{}
	for _, id := range e.st.Kandy.UserIDs() {
		held[id] = true
	}
	tl.KandyUsers = len(held)
	for _, sub := range subs {
		if id, err := userid.FromSub(sub); err == nil && held[id] {
			tl.KandyMatched++
		}
	}
}

// checkGetMe signs every user in and reads its account through the API
// with the access token, as a frontend does.
func (e *env) checkGetMe(ctx context.Context, tl *timeline, subs map[string]string) error {
	for email, sub := range subs {
		out, err := e.pool.Client.InitiateAuth(ctx, &cip.InitiateAuthInput{ClientId: aws.String(e.pool.ClientID),
			AuthFlow: ciptypes.AuthFlowTypeUserPasswordAuth, AuthParameters: map[string]string{"USERNAME": email, "PASSWORD": password}})
		if err != nil || out.AuthenticationResult == nil {
			return fmt.Errorf("signing %s in: %v", email, err)
		}
		want, _ := userid.FromSub(sub)
		if got, err := e.getMe(ctx, aws.ToString(out.AuthenticationResult.AccessToken)); err != nil {
			return err
		} else if got == want {
			tl.GetMeOK++
		}
	}
	return nil
}

// getMe returns the user_id GET /users/me answers with 200, or "";
// it waits out the route's throttling.
func (e *env) getMe(ctx context.Context, token string) (string, error) {
	for try := 0; ; try++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.apiURL+"/users/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := e.http.Do(req)
		if err != nil {
			return "", err
		}
		var body struct {
			UserID string `json:"user_id"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusTooManyRequests && try < 10:
			time.Sleep(time.Second)
		case resp.StatusCode == http.StatusOK:
			return body.UserID, nil
		default:
			return "", nil
		}
	}
}
