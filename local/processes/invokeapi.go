package processes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// Invoker runs one invocation of a function (see Pool.Invoke).
type Invoker interface {
	Invoke(ctx context.Context, event []byte) ([]byte, error)
}

// maxInvokePayload is Lambda's limit for a synchronous request.
const maxInvokePayload = 6 << 20

// InvokeAPI is Lambda's Invoke operation for the functions it names, as
// `sam local start-lambda` serves it:
// POST /2015-03-31/functions/{name}/invocations, by name or ARN. The AWS
// CLI, the SDKs and cognito-local's triggers call it.
type InvokeAPI struct {
	Functions map[string]Invoker
	Region    string // for ARNs in messages; default us-east-1
	Log       *slog.Logger
	// Authorize, if set, is the functions' resource-based policies: it
	// says whether a service may invoke function for its source, given the
	// event. Invocations by the account itself are IAM's affair, allowed.
	Authorize func(function string, c Caller, event []byte) bool
}

// Caller is who invokes a function: a service principal acting for a
// source ARN, or, zero, the account itself (the AWS CLI, an SDK, curl).
type Caller struct {
	Principal string // cognito-idp.amazonaws.com, events.amazonaws.com, …
	SourceARN string // the resource it acts for, when the request says
}

// CallerOf reads who sent r. A request signed (SigV4) with an access key
// named after a service principal, such as cognito-idp.amazonaws.com, is
// that service's: that is how the local run's services identify
// themselves. X-Amz-Source-Arn names the resource it acts for.
func CallerOf(r *http.Request) Caller {
	_, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	key, _, _ := strings.Cut(cred, "/")
	if !ok || !strings.HasSuffix(key, ".amazonaws.com") {
		return Caller{}
	}
	return Caller{Principal: key, SourceARN: r.Header.Get("X-Amz-Source-Arn")}
}

// Handler serves the Invoke operation.
func (a *InvokeAPI) Handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("POST /2015-03-31/functions/{name}/invocations", a.invoke)
	return m
}

func (a *InvokeAPI) invoke(w http.ResponseWriter, r *http.Request) {
	name := functionName(r.PathValue("name"))
	fn, ok := a.Functions[name]
	if !ok {
		lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+a.arn(name))
		return
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, maxInvokePayload+1))
	switch {
	case err != nil:
		lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not read the request body")
		return
	case len(payload) > maxInvokePayload:
		lambdaError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
		return
	case len(payload) == 0:
		payload = []byte("{}")
	case !json.Valid(payload):
		lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json")
		return
	}
	if c := CallerOf(r); c.Principal != "" && a.Authorize != nil && !a.Authorize(name, c, payload) {
		a.Log.Warn("lambda: invocation refused by the function's permissions", "function", name, "principal", c.Principal, "source_arn", c.SourceARN)
		lambdaError(w, http.StatusForbidden, "AccessDeniedException", fmt.Sprintf(
			"%s is not authorized to perform: lambda:InvokeFunction on resource: %s because no resource-based policy allows the lambda:InvokeFunction action",
			c.Principal, a.arn(name)))
		return
	}
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	switch typ := r.Header.Get("X-Amz-Invocation-Type"); typ {
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
	case "Event":
		go a.run(context.WithoutCancel(r.Context()), name, fn, payload)
		w.WriteHeader(http.StatusAccepted)
	case "", "RequestResponse":
		a.respond(r.Context(), w, name, fn, payload)
	default:
		lambdaError(w, http.StatusBadRequest, "InvalidParameterValueException", "Unsupported invocation type "+typ)
	}
}

// respond runs a RequestResponse invocation and answers as Lambda does.
func (a *InvokeAPI) respond(ctx context.Context, w http.ResponseWriter, name string, fn Invoker, payload []byte) {
	out, err := fn.Invoke(ctx, payload)
	var fe *FunctionError
	switch {
	case errors.As(err, &fe):
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		out = fe.Payload()
	case errors.Is(err, ErrThrottled):
		w.Header().Set("X-Amzn-ErrorType", "TooManyRequestsException")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_ = json.NewEncoder(w).Encode(map[string]string{"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "Type": "User", "message": "Rate Exceeded."})
		return
	case err != nil:
		a.Log.Error("lambda: invoke failed", "function", name, "err", err.Error())
		lambdaError(w, http.StatusInternalServerError, "ServiceException", "The function could not be run: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// run is an asynchronous (Event) invocation: its outcome is only logged.
func (a *InvokeAPI) run(ctx context.Context, name string, fn Invoker, payload []byte) {
	if _, err := fn.Invoke(ctx, payload); err != nil {
		a.Log.Error("lambda: asynchronous invocation failed", "function", name, "err", err.Error())
	}
}

func (a *InvokeAPI) arn(name string) string {
	region := a.Region
	if region == "" {
		region = "us-east-1"
	}
	return fmt.Sprintf("arn:aws:lambda:%s:000000000000:function:%s", region, name)
}

// functionName reads a name, a partial ARN (123456789012:function:Name)
// or a full ARN, with or without a qualifier.
func functionName(s string) string {
	if _, rest, ok := strings.Cut(s, "function:"); ok {
		s = rest
	}
	name, _, _ := strings.Cut(s, ":")
	return name
}

// lambdaError writes an error as the Lambda API does: the type in
// X-Amzn-ErrorType, the message in the JSON body.
func lambdaError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	kind := "User"
	if status >= 500 {
		kind = "Service"
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": kind, "message": msg})
}
