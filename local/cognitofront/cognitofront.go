// Package cognitofront stands between cognito-local and its callers in the
// local run, to do two things Cognito does and cognito-local does not: it
// refuses the user attributes Cognito refuses (sub above all: whoever
// chooses their sub becomes that user), and it tells of each user deleted
// from a pool, as CloudTrail records AdminDeleteUser and DeleteUser for
// EventBridge.
package cognitofront

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
)

// UserDeleted is a user's successful deletion from a pool, with what
// CloudTrail records of the call.
type UserDeleted struct {
	PoolID string
	// Sub is the deleted user's (CloudTrail's additionalEventData.sub).
	Sub       string
	EventName string    // "AdminDeleteUser" or "DeleteUser"
	Time      time.Time // when the pool answered, UTC
	SourceIP  string    // the caller's
	UserAgent string    // the caller's
}

// Interceptor checks and watches the Cognito API's requests on their way to
// Next, cognito-local.
type Interceptor struct {
	Next http.Handler
	// Users looks users up in cognito-local itself (AdminGetUser,
	// GetUser): a user's sub is known only before the delete.
	Users *cip.Client
	// Schema is the pool's, from NewSchema.
	Schema Schema
	// OnUserDeleted, if set, hears of each user deleted, once the pool has
	// answered, in a goroutine of its own; Wait waits for those running.
	OnUserDeleted func(ctx context.Context, d UserDeleted)
	// Log, if set, hears of refusals and of deletions it cannot report.
	Log *slog.Logger

	hooks sync.WaitGroup
}

// targetPrefix starts the X-Amz-Target of every Cognito user pools call.
const targetPrefix = "AWSCognitoIdentityProviderService."

// maxBody bounds the body of a call this handler reads.
const maxBody = 1 << 20

// request holds the fields of the calls this handler reads.
type request struct {
	UserPoolId, Username, AccessToken string
	UserAttributes                    []struct{ Name string }
}

func (h *Interceptor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	var write write
	switch {
	case !ok || r.Method != http.MethodPost:
		h.Next.ServeHTTP(w, r)
		return
	case op == "SignUp" || op == "AdminCreateUser":
		write = create
	case op == "UpdateUserAttributes" || op == "AdminUpdateUserAttributes":
		write = update
	case op == "AdminDeleteUser" || op == "DeleteUser":
	default:
		h.Next.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		(&apiError{http.StatusBadRequest, "SerializationException", "the request body could not be read"}).write(w)
		return
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	var in request
	if json.Unmarshal(body, &in) != nil {
		h.Next.ServeHTTP(w, r) // cognito-local answers a malformed call itself
		return
	}
	if op == "AdminDeleteUser" || op == "DeleteUser" {
		h.deleteUser(w, r, op, in)
		return
	}
	names := make([]string, len(in.UserAttributes))
	for i, a := range in.UserAttributes {
		names[i] = a.Name
	}
	if e := h.Schema.check(write, names); e != nil {
		h.log().Info("cognito: refused", "operation", op, "error", e.typ, "message", strings.TrimSpace(e.message))
		e.write(w)
		return
	}
	h.Next.ServeHTTP(w, r)
}

// deleteUser learns whom a delete is about, passes it on, and tells of
// the deletion if the pool answers 2xx.
func (h *Interceptor) deleteUser(w http.ResponseWriter, r *http.Request, op string, in request) {
	if h.OnUserDeleted == nil {
		h.Next.ServeHTTP(w, r)
		return
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	d := UserDeleted{EventName: op, SourceIP: ip, UserAgent: r.UserAgent()}
	d.PoolID, d.Sub = h.whom(r.Context(), op, in)
	rec := &statusRecorder{ResponseWriter: w}
	h.Next.ServeHTTP(rec, r)
	if rec.status/100 != 2 {
		return
	}
	if d.Sub == "" || d.PoolID == "" {
		h.log().Warn("cognito: a user was deleted whose sub could not be learnt; no deletion is reported", "operation", op)
		return
	}
	d.Time = time.Now().UTC()
	ctx := context.WithoutCancel(r.Context())
	h.hooks.Add(1)
	go func() {
		defer h.hooks.Done()
		h.OnUserDeleted(ctx, d)
	}()
}

// whom is the pool and sub of the user a delete is about; empty when the
// pool does not know them (the delete then fails too).
func (h *Interceptor) whom(ctx context.Context, op string, in request) (poolID, sub string) {
	if op == "AdminDeleteUser" {
		out, err := h.Users.AdminGetUser(ctx, &cip.AdminGetUserInput{UserPoolId: aws.String(in.UserPoolId), Username: aws.String(in.Username)})
		if err != nil {
			return "", ""
		}
		return in.UserPoolId, subOf(out.UserAttributes)
	}
	out, err := h.Users.GetUser(ctx, &cip.GetUserInput{AccessToken: aws.String(in.AccessToken)})
	if err != nil {
		return "", ""
	}
	return poolOf(in.AccessToken), subOf(out.UserAttributes)
}

func (h *Interceptor) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

// Wait waits for the OnUserDeleted calls running.
func (h *Interceptor) Wait() { h.hooks.Wait() }

func subOf(attrs []types.AttributeType) string {
	for _, a := range attrs {
		if aws.ToString(a.Name) == "sub" {
			return aws.ToString(a.Value)
		}
	}
	return ""
}

// poolOf is the pool that issued an access token: the last part of its
// iss. GetUser has just accepted the token, so its claims are the pool's.
func poolOf(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct{ Iss string }
	if json.Unmarshal(raw, &claims) != nil {
		return ""
	}
	return claims.Iss[strings.LastIndex(claims.Iss, "/")+1:]
}

// statusRecorder notes the status of the answer it passes on.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// apiError is an error answered as Cognito answers it.
type apiError struct {
	status       int
	typ, message string
}

func invalidParameter(message string) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidParameterException", message}
}

func (e *apiError) write(w http.ResponseWriter) {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.typ+":")
	w.Header().Set("X-Amzn-RequestId", hex.EncodeToString(id))
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.typ, "message": e.message})
}
