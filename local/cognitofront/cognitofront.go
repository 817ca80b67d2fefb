// Package cognitofront stands between cognito-local and its callers in the
// local run. It reads every call strictly, as the input of an operation
// of Cognito's API, and passes on only its own encoding of what it read,
// so cognito-local never reads a request differently from the front. It
// does two things Cognito does and cognito-local does not: it refuses the
// user attributes Cognito refuses (sub above all: whoever chooses their
// sub becomes that user), and it tells of each user deleted from a pool,
// as CloudTrail records AdminDeleteUser and DeleteUser for EventBridge.
package cognitofront

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
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
	// Pool, if set, lets the front answer USER_SRP_AUTH itself (see
	// srpStart); without it such a sign-in goes to cognito-local, which
	// cannot do it.
	Pool PoolStore

	hooks sync.WaitGroup
	srp   srp
}

// maxBody bounds the body of a call this handler reads.
const maxBody = 1 << 20

// errUnknownOperation is a target the front does not serve.
var errUnknownOperation = errors.New("unknown operation")

// ServeHTTP reads a call strictly, refuses what Cognito refuses, and
// passes on its own encoding of what it read, never the bytes it was
// given: what cognito-local reads is what this front checked. Only the
// exact X-Amz-Target of an operation of Cognito's API is served; the
// well-known documents of a pool are the only GETs.
func (h *Interceptor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && wellKnown.MatchString(r.URL.Path) {
		h.Next.ServeHTTP(w, passOn(r, nil))
		return
	}
	target := r.Header.Get("X-Amz-Target")
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		(&apiError{http.StatusNotFound, "UnknownOperationException", "the Cognito API is POST / with an X-Amz-Target"}).write(w)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		(&apiError{http.StatusBadRequest, "SerializationException", "the request body could not be read"}).write(w)
		return
	}
	in, err := decode(target, body)
	switch {
	case errors.Is(err, errUnknownOperation):
		h.log().Info("cognito: refused", "target", target, "error", "UnknownOperationException")
		(&apiError{http.StatusBadRequest, "UnknownOperationException", "unknown operation " + strconv.Quote(target)}).write(w)
		return
	case err != nil:
		h.log().Info("cognito: refused", "target", target, "error", "SerializationException", "message", err.Error())
		(&apiError{http.StatusBadRequest, "SerializationException", err.Error()}).write(w)
		return
	}
	if e := h.Schema.checkInput(in); e != nil {
		h.log().Info("cognito: refused", "target", target, "error", e.typ, "message", strings.TrimSpace(e.message))
		e.write(w)
		return
	}
	out, err := forward(r, target, in)
	if err != nil {
		(&apiError{http.StatusInternalServerError, "InternalErrorException", "the request could not be encoded again"}).write(w)
		return
	}
	switch in := in.(type) {
	case *cip.AdminDeleteUserInput:
		h.deleteUser(w, r, out, "AdminDeleteUser", in.UserPoolId, in.Username, nil)
	case *cip.DeleteUserInput:
		h.deleteUser(w, r, out, "DeleteUser", nil, nil, in.AccessToken)
	case *cip.InitiateAuthInput:
		if in.AuthFlow == types.AuthFlowTypeUserSrpAuth && h.Pool != nil {
			h.srpStart(w, in)
			return
		}
		h.Next.ServeHTTP(w, out)
	case *cip.RespondToAuthChallengeInput:
		if in.ChallengeName == types.ChallengeNameTypePasswordVerifier && h.Pool != nil {
			h.srpVerify(w, r, in)
			return
		}
		h.Next.ServeHTTP(w, out)
	default:
		h.Next.ServeHTTP(w, out)
	}
}

// wellKnown are the pool documents a token's verifier reads.
var wellKnown = regexp.MustCompile(`^/[A-Za-z0-9_-]+/\.well-known/(jwks\.json|openid-configuration)$`)

// passOn is r as the front sends it on: body, nothing else of what the
// caller sent but its method, path and the headers set after.
// forward is r as the front passes it on for target: its own encoding of
// in, and only the headers cognito-local reads.
func forward(r *http.Request, target string, in any) (*http.Request, error) {
	canon, err := encode(in)
	if err != nil {
		return nil, err
	}
	out := passOn(r, canon)
	out.Header.Set("X-Amz-Target", target)
	out.Header.Set("Content-Type", "application/x-amz-json-1.1")
	return out, nil
}

func passOn(r *http.Request, body []byte) *http.Request {
	out := r.Clone(r.Context())
	out.Header = http.Header{}
	out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	out.URL.RawQuery = ""
	return out
}

// deleteUser learns whom a delete is about, passes it on as out, and
// tells of the deletion if the pool answers 2xx, with what CloudTrail
// records of the caller's request r.
func (h *Interceptor) deleteUser(w http.ResponseWriter, r, out *http.Request, op string, poolID, username, accessToken *string) {
	if h.OnUserDeleted == nil {
		h.Next.ServeHTTP(w, out)
		return
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	d := UserDeleted{EventName: op, SourceIP: ip, UserAgent: r.UserAgent()}
	d.PoolID, d.Sub = h.whom(r.Context(), poolID, username, accessToken)
	rec := &statusRecorder{ResponseWriter: w}
	h.Next.ServeHTTP(rec, out)
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

// whom is the pool and sub of the user a delete is about, named by pool
// and user name (AdminDeleteUser) or by an access token (DeleteUser);
// empty when the pool does not know them (the delete then fails too).
func (h *Interceptor) whom(ctx context.Context, poolID, username, accessToken *string) (pool, sub string) {
	if accessToken == nil {
		out, err := h.Users.AdminGetUser(ctx, &cip.AdminGetUserInput{UserPoolId: poolID, Username: username})
		if err != nil {
			return "", ""
		}
		return aws.ToString(poolID), subOf(out.UserAttributes)
	}
	out, err := h.Users.GetUser(ctx, &cip.GetUserInput{AccessToken: accessToken})
	if err != nil {
		return "", ""
	}
	return poolOf(aws.ToString(accessToken)), subOf(out.UserAttributes)
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
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.typ+":")
	w.Header().Set("X-Amzn-RequestId", hex.EncodeToString(randomBytes(16)))
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.typ, "message": e.message})
}
