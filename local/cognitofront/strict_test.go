package cognitofront

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
)

// recorder stands in for cognito-local: it keeps each request it gets.
type recorder struct {
	mu   sync.Mutex
	got  []*http.Request
	body [][]byte
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.got, rc.body = append(rc.got, r), append(rc.body, b)
	rc.mu.Unlock()
	_, _ = w.Write([]byte(`{}`))
}

func (rc *recorder) last() (*http.Request, []byte) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) == 0 {
		return nil, nil
	}
	return rc.got[len(rc.got)-1], rc.body[len(rc.body)-1]
}

// newFront is an Interceptor before rc, with the standard attributes.
func newFront(rc *recorder) *Interceptor { return &Interceptor{Next: rc, Schema: NewSchema(nil)} }

// send posts body with target to h and returns the answer.
func send(h http.Handler, target, body string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("X-Amz-Target", target)
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestTheFrontReadsAsCognitoLocalDoes: each way a request could be read
// one way by the front and another by cognito-local, and so write a
// chosen sub, is a 400 that reaches nothing: a prefixed target, a second
// key in another case, an attribute with a second name, a type error
// elsewhere in the body, a key twice.
func TestTheFrontReadsAsCognitoLocalDoes(t *testing.T) {
	rc := &recorder{}
	h := newFront(rc)
	const sub = `{"Name":"sub","Value":"0a0a0a0a-victim"}`
	for _, c := range []struct {
		name, target, body, wantType string
	}{
		{"a prefixed target", "Foo.SignUp", `{"ClientId":"c","Username":"u","Password":"p","UserAttributes":[` + sub + `]}`, "UnknownOperationException"},
		{"a prefixed AdminCreateUser", "Evil.AdminCreateUser", `{"UserPoolId":"p","Username":"u","UserAttributes":[` + sub + `]}`, "UnknownOperationException"},
		{"a target in another case", "AWSCognitoIdentityProviderService.signup", `{"ClientId":"c"}`, "UnknownOperationException"},
		{"a second key in another case", targetPrefix + "SignUp", `{"ClientId":"c","Username":"u","Password":"p","UserAttributes":[],"userAttributes":[` + sub + `]}`, "SerializationException"},
		{"an attribute with a second name", targetPrefix + "SignUp", `{"ClientId":"c","Username":"u","Password":"p","UserAttributes":[{"Name":"sub","name":"email","Value":"x"}]}`, "SerializationException"},
		{"a type error elsewhere", targetPrefix + "SignUp", `{"ClientId":"c","Username":"u","Password":"p","AccessToken":1,"UserAttributes":[` + sub + `]}`, "SerializationException"},
		{"a key twice", targetPrefix + "SignUp", `{"ClientId":"c","UserAttributes":[],"UserAttributes":[` + sub + `]}`, "SerializationException"},
		{"not JSON", targetPrefix + "SignUp", `{"ClientId":`, "SerializationException"},
		{"sub itself", targetPrefix + "SignUp", `{"ClientId":"c","Username":"u","Password":"p","UserAttributes":[` + sub + `]}`, "InvalidParameterException"},
		{"sub deleted", targetPrefix + "AdminDeleteUserAttributes", `{"UserPoolId":"p","Username":"u","UserAttributeNames":["sub"]}`, "InvalidParameterException"},
	} {
		before := len(rc.got)
		w := send(h, c.target, c.body)
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", c.name, w.Code)
		}
		if typ := strings.TrimSuffix(w.Header().Get("X-Amzn-ErrorType"), ":"); typ != c.wantType {
			t.Errorf("%s: %s, want %s", c.name, typ, c.wantType)
		}
		if len(rc.got) != before {
			t.Errorf("%s: passed on to cognito-local", c.name)
		}
	}
}

// TestTheFrontForwardsItsOwnEncoding: what reaches cognito-local is the
// front's encoding of what it read, with none of the caller's headers but
// the target and the content type.
func TestTheFrontForwardsItsOwnEncoding(t *testing.T) {
	rc := &recorder{}
	w := send(newFront(rc), targetPrefix+"InitiateAuth",
		"{ \"AuthParameters\" : {\"USERNAME\":\"ada\", \"PASSWORD\":\"pw\"},\n\"ClientId\":\"c\", \"AuthFlow\":\"USER_PASSWORD_AUTH\" }",
		"X-Kandy-Front", "forged", "Cookie", "a=b", "X-Forwarded-For", "6.6.6.6")
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	r, body := rc.last()
	if want := `{"AuthFlow":"USER_PASSWORD_AUTH","ClientId":"c","AuthParameters":{"PASSWORD":"pw","USERNAME":"ada"}}`; string(body) != want {
		t.Errorf("forwarded %s, want %s", body, want)
	}
	for name := range r.Header {
		if name != "X-Amz-Target" && name != "Content-Type" {
			t.Errorf("forwarded the caller's header %s", name)
		}
	}
}

// TestEverySDKCallPasses: what the AWS SDK sends for each call the local
// run, the tests and a frontend make is read, checked and passed on with
// the same meaning: the front's encoding decodes to the same input.
func TestEverySDKCallPasses(t *testing.T) {
	rc := &recorder{}
	srv := httptest.NewServer(newFront(rc))
	defer srv.Close()
	c := client(srv.URL)
	ctx := context.Background()
	p, u, s := aws.String("local_pool"), aws.String("ada@example.com"), aws.String("secret")
	calls := map[string]func() error{
		"SignUp": func() error {
			_, err := c.SignUp(ctx, &cip.SignUpInput{ClientId: s, Username: u, Password: s, UserAttributes: attrs("email"), ClientMetadata: map[string]string{"b": "2", "a": "1"}})
			return err
		},
		"InitiateAuth": func() error {
			_, err := c.InitiateAuth(ctx, &cip.InitiateAuthInput{ClientId: s, AuthFlow: types.AuthFlowTypeUserSrpAuth, AuthParameters: map[string]string{"USERNAME": "ada", "SRP_A": "ff"}})
			return err
		},
		"AdminSetUserPassword": func() error {
			_, err := c.AdminSetUserPassword(ctx, &cip.AdminSetUserPasswordInput{UserPoolId: p, Username: u, Password: s, Permanent: true})
			return err
		},
		"ListUsers": func() error {
			_, err := c.ListUsers(ctx, &cip.ListUsersInput{UserPoolId: p, Limit: aws.Int32(0), AttributesToGet: []string{"sub"}})
			return err
		},
		"CreateUserPoolClient": func() error {
			_, err := c.CreateUserPoolClient(ctx, &cip.CreateUserPoolClientInput{UserPoolId: p, ClientName: s,
				ExplicitAuthFlows: []types.ExplicitAuthFlowsType{types.ExplicitAuthFlowsTypeAllowUserSrpAuth}, GenerateSecret: false})
			return err
		},
	}
	for op, call := range calls {
		if err := call(); err != nil {
			t.Errorf("%s: %v", op, err)
			continue
		}
		r, body := rc.last()
		if got := r.Header.Get("X-Amz-Target"); got != targetPrefix+op {
			t.Errorf("%s: forwarded target %q", op, got)
		}
		again, err := decode(targetPrefix+op, body)
		if err != nil {
			t.Errorf("%s: the forwarded %s does not read again: %v", op, body, err)
		}
		if canon, _ := encode(again); !bytes.Equal(canon, body) {
			t.Errorf("%s: forwarded %s, which encodes again as %s", op, body, canon)
		}
	}
}

// Every operation of the SDK is served, and nothing else: the front's
// table of shapes is the SDK's.
func TestTheOperationsAreTheSDKs(t *testing.T) {
	if len(operations) < 100 {
		t.Fatalf("%d operations read from the SDK; want Cognito's 100 and more", len(operations))
	}
	for _, op := range []string{"SignUp", "InitiateAuth", "RespondToAuthChallenge", "AdminDeleteUser", "DeleteUser", "ListUsers"} {
		if typ := operations[targetPrefix+op]; typ == nil || typ.Name() != op+"Input" {
			t.Errorf("%s: shape %v", op, typ)
		}
	}
}

// FuzzCognitoFront: whatever a caller sends, what the front passes on is
// its canonical encoding of an input of the target's shape (decoding it
// again and encoding it gives the same bytes), and no attribute a client
// writes is sub.
func FuzzCognitoFront(f *testing.F) {
	for _, s := range []struct{ target, body string }{
		{"SignUp", `{"ClientId":"c","Username":"u","Password":"p","UserAttributes":[{"Name":"email","Value":"e"}]}`},
		{"SignUp", `{"UserAttributes":[],"userAttributes":[{"Name":"sub","Value":"x"}]}`},
		{"AdminCreateUser", `{"UserPoolId":"p","Username":"u","UserAttributes":[{"Name":"sub","name":"email","Value":"x"}]}`},
		{"UpdateUserAttributes", `{"AccessToken":1,"UserAttributes":[{"Name":"sub","Value":"x"}]}`},
		{"InitiateAuth", `{"AuthFlow":"USER_PASSWORD_AUTH","AuthParameters":{"USERNAME":"u","PASSWORD":"p"},"ClientId":"c"}`},
		{"ListUsers", `{"UserPoolId":"p","Limit":60,"Filter":"sub = \"x\""}`},
		// The SRP sign-in the front answers itself, and passes on only its
		// own USER_PASSWORD_AUTH call.
		{"InitiateAuth", `{"AuthFlow":"USER_SRP_AUTH","AuthParameters":{"USERNAME":"ada@example.com","SRP_A":"1f"},"ClientId":"srpclient"}`},
		{"RespondToAuthChallenge", `{"ChallengeName":"PASSWORD_VERIFIER","ClientId":"srpclient","ChallengeResponses":{"USERNAME":"u","PASSWORD_CLAIM_SECRET_BLOCK":"AA==","TIMESTAMP":"t","PASSWORD_CLAIM_SIGNATURE":"AA=="}}`},
		{"Foo.SignUp", `{}`},
	} {
		f.Add(s.target, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		rc := &recorder{}
		target := targetPrefix + op
		if strings.Contains(op, ".") {
			target = op
		}
		front := newFront(rc)
		front.Pool = srpPool{}
		send(front, target, string(body))
		r, forwarded := rc.last()
		if r == nil {
			return
		}
		in, err := decode(r.Header.Get("X-Amz-Target"), forwarded)
		if err != nil {
			t.Fatalf("forwarded %q, which does not read: %v", forwarded, err)
		}
		if canon, _ := encode(in); !bytes.Equal(canon, forwarded) {
			t.Fatalf("forwarded %q, not its canonical encoding %q", forwarded, canon)
		}
		for _, name := range writtenAttributes(in) {
			if name == "sub" {
				t.Fatalf("forwarded a write of sub: %s", forwarded)
			}
		}
	})
}

// writtenAttributes are the names of the attributes a client writes or
// deletes with input in.
func writtenAttributes(in any) []string {
	var names []string
	var attrs []types.AttributeType
	switch in := in.(type) {
	case *cip.SignUpInput:
		attrs = in.UserAttributes
	case *cip.AdminCreateUserInput:
		attrs = in.UserAttributes
	case *cip.UpdateUserAttributesInput:
		attrs = in.UserAttributes
	case *cip.AdminUpdateUserAttributesInput:
		attrs = in.UserAttributes
	case *cip.DeleteUserAttributesInput:
		names = in.UserAttributeNames
	case *cip.AdminDeleteUserAttributesInput:
		names = in.UserAttributeNames
	}
	for _, a := range attrs {
		names = append(names, aws.ToString(a.Name))
	}
	return names
}
