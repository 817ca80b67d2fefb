// Package metrics writes CloudWatch Embedded Metric Format (EMF) lines:
// JSON log lines from which CloudWatch Logs extracts metrics, with no
// agent and no PutMetricData call on the request path.
package metrics

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
)

// DefaultNamespace is used when the configuration names none.
const DefaultNamespace = "KandyProvisioner"

// Metric names; template.yaml's alarms use them.
const (
	UsersCreated        = "UsersCreated"
	UsersAlreadyPresent = "UsersAlreadyPresent"
	QuotaExceeded       = "QuotaExceeded"
	KandyErrors         = "KandyErrors"
	KandyLatency        = "KandyLatency"
	Drift               = "Drift"
	// DeletedByUser is how many users a reconcile found who deleted their
	// account and stay in the pool: a choice, not drift.
	DeletedByUser = "DeletedByUser"
	// AccountDeletedSkips counts, by Path, what an automatic path left
	// alone because the user had deleted their account.
	AccountDeletedSkips = "AccountDeletedSkips"
	// Deprovisioned counts the users who left the pool and whose account
	// the deprovision function deleted (or tombstoned, with none).
	Deprovisioned = "Deprovisioned"
	// DeprovisionEventsSkipped counts, by Reason, the deletion events the
	// function could not act on and left to reconcile.
	DeprovisionEventsSkipped = "DeprovisionEventsSkipped"
	// DependencyErrors counts, by Dependency, the operations that failed
	// because DynamoDB, KMS or Secrets Manager did (503 unavailable).
	DependencyErrors = "DependencyErrors"
	// AccountsRebuilt counts the accounts rebuilt because their Kandy user
	// was gone: drift found by a request between reconciles.
	AccountsRebuilt = "AccountsRebuilt"
	// KandyCredentialsRefused counts the operations that failed because
	// Kandy refused the project's credentials even as read again from
	// Secrets Manager: the secret needs an operator. It has an alarm.
	KandyCredentialsRefused = "KandyCredentialsRefused"
)

// Dimension names.
const (
	DimOperation  = "Operation"
	DimErrorKind  = "ErrorKind"
	DimClass      = "Class"
	DimPath       = "Path"
	DimReason     = "Reason"
	DimDependency = "Dependency"
)

// Recorder writes one EMF line per event. It is safe for concurrent use.
type Recorder struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
	now       func() time.Time
}

// New returns a Recorder writing to w (in Lambda, standard output).
func New(w io.Writer, namespace string) *Recorder {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return &Recorder{w: w, namespace: namespace, now: time.Now}
}

// The ports the Recorder serves.
var (
	_ provision.Metrics = (*Recorder)(nil)
	_ kandy.Observer    = (*Recorder)(nil)
)

// UserCreated counts a Kandy account this service created.
func (r *Recorder) UserCreated(ctx context.Context) { r.count(ctx, UsersCreated) }

// UserAlreadyPresent counts a request for an account that already existed.
func (r *Recorder) UserAlreadyPresent(ctx context.Context) { r.count(ctx, UsersAlreadyPresent) }

// QuotaExceeded counts a sign-up Kandy refused for the account's user limit.
func (r *Recorder) QuotaExceeded(ctx context.Context) { r.count(ctx, QuotaExceeded) }

// AccountRebuilt counts an account rebuilt because its Kandy user was gone.
func (r *Recorder) AccountRebuilt(ctx context.Context) { r.count(ctx, AccountsRebuilt) }

// CredentialsRefused counts an operation refused for the project's
// credentials, after they were read again.
func (r *Recorder) CredentialsRefused(ctx context.Context) { r.count(ctx, KandyCredentialsRefused) }

// KandyCall records one HTTP call to Kandy: its latency by operation and,
// when errKind is not empty, an error in total and by kind.
func (r *Recorder) KandyCall(ctx context.Context, op string, elapsed time.Duration, errKind string) {
	props := map[string]any{DimOperation: op, KandyLatency: float64(elapsed.Microseconds()) / 1000}
	directives := []directive{{
		Namespace: r.namespace, Dimensions: [][]string{{DimOperation}},
		Metrics: []definition{{Name: KandyLatency, Unit: "Milliseconds"}},
	}}
	if errKind != "" {
		props[DimErrorKind] = errKind
		props[KandyErrors] = 1
		directives = append(directives, directive{
			Namespace: r.namespace, Dimensions: [][]string{{}, {DimErrorKind}},
			Metrics: []definition{{Name: KandyErrors, Unit: "Count"}},
		})
	}
	r.emit(ctx, directives, props)
}

// Drift publishes how many differences of one class a reconcile found, by
// class and in total.
func (r *Recorder) Drift(ctx context.Context, class string, n int) {
	r.emit(ctx, []directive{{
		Namespace: r.namespace, Dimensions: [][]string{{}, {DimClass}},
		Metrics: []definition{{Name: Drift, Unit: "Count"}},
	}}, map[string]any{Drift: n, DimClass: class})
}

// Deleted publishes how many users a reconcile found who deleted their
// account and stay in the pool.
func (r *Recorder) Deleted(ctx context.Context, n int) {
	r.emit(ctx, []directive{{
		Namespace: r.namespace, Dimensions: [][]string{{}},
		Metrics: []definition{{Name: DeletedByUser, Unit: "Count"}},
	}}, map[string]any{DeletedByUser: n})
}

// AccountDeleted counts a user an automatic path (trigger, retry) did not
// provision because they had deleted their account.
func (r *Recorder) AccountDeleted(ctx context.Context, path string) {
	r.countBy(ctx, AccountDeletedSkips, DimPath, path)
}

// UserDeprovisioned counts a user who left the pool and was deprovisioned.
func (r *Recorder) UserDeprovisioned(ctx context.Context) { r.count(ctx, Deprovisioned) }

// DeprovisionSkipped counts a deletion event left to reconcile, by reason.
func (r *Recorder) DeprovisionSkipped(ctx context.Context, reason string) {
	r.countBy(ctx, DeprovisionEventsSkipped, DimReason, reason)
}

// DependencyFailed counts an operation that failed because an AWS
// dependency did.
func (r *Recorder) DependencyFailed(ctx context.Context, dependency string) {
	r.countBy(ctx, DependencyErrors, DimDependency, dependency)
}

// countBy counts one event in total and by one dimension's value.
func (r *Recorder) countBy(ctx context.Context, name, dim, value string) {
	r.emit(ctx, []directive{{
		Namespace: r.namespace, Dimensions: [][]string{{}, {dim}},
		Metrics: []definition{{Name: name, Unit: "Count"}},
	}}, map[string]any{name: 1, dim: value})
}

func (r *Recorder) count(ctx context.Context, name string) {
	r.emit(ctx, []directive{{
		Namespace: r.namespace, Dimensions: [][]string{{}},
		Metrics: []definition{{Name: name, Unit: "Count"}},
	}}, map[string]any{name: 1})
}

type directive struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []definition `json:"Metrics"`
}

type definition struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type metadata struct {
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

func (r *Recorder) emit(ctx context.Context, ds []directive, props map[string]any) {
	props["_aws"] = metadata{Timestamp: r.now().UnixMilli(), CloudWatchMetrics: ds}
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		props["requestId"] = lc.AwsRequestID
	}
	line, err := json.Marshal(props)
	if err != nil {
		return // every value above is a string or a number
	}
	line = append(line, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.w.Write(line) // a metric lost to a broken stdout is not worth failing a sign-up
}
