package cognitofront

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
)

// fakePool stands in for cognito-local: users by name, access tokens by
// user, and the calls it was sent.
type fakePool struct {
	mu     sync.Mutex
	subs   map[string]string // username -> sub
	tokens map[string]string // access token -> username
	calls  []string
}

func (p *fakePool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	var in struct{ Username, AccessToken string }
	_ = json.NewDecoder(r.Body).Decode(&in)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, op)
	user := in.Username
	if op == "GetUser" || op == "DeleteUser" {
		user = p.tokens[in.AccessToken]
	}
	sub, ok := p.subs[user]
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch {
	case (op == "AdminGetUser" || op == "GetUser" || strings.HasSuffix(op, "DeleteUser")) && !ok:
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"UserNotFoundException","message":"User does not exist."}`))
	case op == "AdminGetUser" || op == "GetUser":
		_ = json.NewEncoder(w).Encode(map[string]any{"Username": user, "UserAttributes": []map[string]string{{"Name": "sub", "Value": sub}}})
	case strings.HasSuffix(op, "DeleteUser"):
		delete(p.subs, user)
		_, _ = w.Write([]byte(`{}`))
	default:
		_, _ = w.Write([]byte(`{"UserSub":"generated","UserConfirmed":false}`))
	}
}

func (p *fakePool) sent(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.calls {
		if c == op {
			n++
		}
	}
	return n
}

func client(url string) *cip.Client {
	return cip.New(cip.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
}

// front serves an Interceptor before pool, with a custom attribute of each
// kind, and returns a client of it.
func front(t *testing.T, pool *fakePool, hook func(context.Context, UserDeleted)) (*cip.Client, *Interceptor) {
	t.Helper()
	backend := httptest.NewServer(pool)
	t.Cleanup(backend.Close)
	proxy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { pool.ServeHTTP(w, r) })
	h := &Interceptor{Next: proxy, Users: client(backend.URL), OnUserDeleted: hook,
		Schema: NewSchema([]SchemaAttribute{{Name: "tier", Mutable: aws.Bool(false)}, {Name: "team"}})}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return client(srv.URL), h
}

func attrs(names ...string) []types.AttributeType {
	out := make([]types.AttributeType, len(names))
	for i, n := range names {
		out[i] = types.AttributeType{Name: aws.String(n), Value: aws.String("v")}
	}
	return out
}

// TestAttributesCognitoRefuses: sub and Cognito's own attributes in any
// of the four writes, an immutable one on update, and one the schema
// lacks, each an InvalidParameterException before cognito-local; the
// others pass on.
func TestAttributesCognitoRefuses(t *testing.T) {
	pool := &fakePool{}
	c, _ := front(t, pool, nil)
	ctx := context.Background()
	writes := map[string]func(a []types.AttributeType) error{
		"SignUp": func(a []types.AttributeType) error {
			_, err := c.SignUp(ctx, &cip.SignUpInput{ClientId: aws.String("c"), Username: aws.String("u"), Password: aws.String("p"), UserAttributes: a})
			return err
		},
		"AdminCreateUser": func(a []types.AttributeType) error {
			_, err := c.AdminCreateUser(ctx, &cip.AdminCreateUserInput{UserPoolId: aws.String("p"), Username: aws.String("u"), UserAttributes: a})
			return err
		},
		"UpdateUserAttributes": func(a []types.AttributeType) error {
			_, err := c.UpdateUserAttributes(ctx, &cip.UpdateUserAttributesInput{AccessToken: aws.String("t"), UserAttributes: a})
			return err
		},
		"AdminUpdateUserAttributes": func(a []types.AttributeType) error {
			_, err := c.AdminUpdateUserAttributes(ctx, &cip.AdminUpdateUserAttributesInput{UserPoolId: aws.String("p"), Username: aws.String("u"), UserAttributes: a})
			return err
		},
	}
	nonMutable := func(name string) string { return "Cannot modify the non-mutable attribute " + name }
	notInSchema := func(name string) string {
		return "Attributes did not conform to the schema: " + name + ": Attribute does not exist in the schema.\n"
	}
	for op, write := range writes {
		updating := strings.Contains(op, "Update")
		tests := []struct {
			attrs []string
			want  string // the refusal's message; empty: passed on
		}{
			{[]string{"email", "sub"}, nonMutable("sub")},
			{[]string{"identities"}, nonMutable("identities")},
			{[]string{"cognito:user_status"}, nonMutable("cognito:user_status")},
			{[]string{"favorite_flavor"}, notInSchema("favorite_flavor")},
			{[]string{"custom:nope"}, notInSchema("custom:nope")},
			{[]string{"email", "name", "custom:team"}, ""},
			{[]string{"custom:tier"}, map[bool]string{true: nonMutable("custom:tier"), false: ""}[updating]},
		}
		for _, tt := range tests {
			before := pool.sent(op)
			err := write(attrs(tt.attrs...))
			var invalid *types.InvalidParameterException
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("%s %v: %v, want it passed on", op, tt.attrs, err)
			case tt.want == "" && pool.sent(op) != before+1:
				t.Errorf("%s %v: not passed on to the pool", op, tt.attrs)
			case tt.want == "":
			case !errors.As(err, &invalid):
				t.Errorf("%s %v: %v, want InvalidParameterException", op, tt.attrs, err)
			case aws.ToString(invalid.Message) != tt.want:
				t.Errorf("%s %v: message %q, want %q", op, tt.attrs, aws.ToString(invalid.Message), tt.want)
			case pool.sent(op) != before:
				t.Errorf("%s %v: refused, yet passed on to the pool", op, tt.attrs)
			}
		}
	}
}

// accessToken is a token whose iss names pool, as cognito-local's do.
func accessToken(pool string) string {
	claims, _ := json.Marshal(map[string]string{"iss": "http://127.0.0.1:9229/" + pool, "token_use": "access"})
	return "e30." + base64.RawURLEncoding.EncodeToString(claims) + ".sig"
}

// TestDeletionsReachTheHookOnce: each delete the pool carries out, by an
// administrator or by the user's own token, reaches the hook once with the
// user's sub; a delete the pool refuses (an unknown user, a user deleted
// already) does not.
func TestDeletionsReachTheHookOnce(t *testing.T) {
	token := accessToken("local_Pool2")
	pool := &fakePool{subs: map[string]string{"ada@example.com": "sub-ada", "bob@example.com": "sub-bob"},
		tokens: map[string]string{token: "bob@example.com"}}
	heard := make(chan UserDeleted, 10)
	c, h := front(t, pool, func(_ context.Context, d UserDeleted) { heard <- d })
	ctx := context.Background()
	del := func(user string) error {
		_, err := c.AdminDeleteUser(ctx, &cip.AdminDeleteUserInput{UserPoolId: aws.String("local_Pool1"), Username: aws.String(user)})
		return err
	}
	if err := del("ada@example.com"); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{del("ada@example.com"), del("nobody@example.com")} {
		var missing *types.UserNotFoundException
		if !errors.As(err, &missing) {
			t.Errorf("a delete of an unknown user: %v", err)
		}
	}
	if _, err := c.DeleteUser(ctx, &cip.DeleteUserInput{AccessToken: aws.String(token)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteUser(ctx, &cip.DeleteUserInput{AccessToken: aws.String(token)}); err == nil {
		t.Error("a second DeleteUser with the token succeeded")
	}
	h.Wait()
	close(heard)
	got := map[string][]UserDeleted{} // by sub; the hooks run in no order
	for d := range heard {
		got[d.Sub] = append(got[d.Sub], d)
	}
	want := []UserDeleted{{PoolID: "local_Pool1", Sub: "sub-ada", EventName: "AdminDeleteUser"}, {PoolID: "local_Pool2", Sub: "sub-bob", EventName: "DeleteUser"}}
	if len(got) != len(want) {
		t.Errorf("the hook heard of %d users, want %d: %+v", len(got), len(want), got)
	}
	for _, w := range want {
		if len(got[w.Sub]) != 1 {
			t.Errorf("%s's deletion reached the hook %d times, want once", w.Sub, len(got[w.Sub]))
			continue
		}
		d := got[w.Sub][0]
		if d.PoolID != w.PoolID {
			t.Errorf("%s: pool %q, want %q", w.Sub, d.PoolID, w.PoolID)
		}
		if d.EventName != w.EventName {
			t.Errorf("%s: event %q, want %q", w.Sub, d.EventName, w.EventName)
		}
		if d.SourceIP != "127.0.0.1" {
			t.Errorf("%s: source IP %q", w.Sub, d.SourceIP)
		}
		if !strings.Contains(d.UserAgent, "aws-sdk-go-v2") {
			t.Errorf("%s: user agent %q", w.Sub, d.UserAgent)
		}
		if time.Since(d.Time) > time.Minute {
			t.Errorf("%s: time %v, over a minute ago", w.Sub, d.Time)
		}
		if d.Time.Location() != time.UTC {
			t.Errorf("%s: time %v, want UTC", w.Sub, d.Time)
		}
	}
}
