// Package deprovision deletes the Kandy account of a user who leaves the
// user pool. Cognito has no delete trigger: CloudTrail records the
// AdminDeleteUser or DeleteUser call, with the user's sub, and EventBridge
// delivers it here, at least once and in no set order.
package deprovision

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
)

// What the EventBridge rule matches; the handler checks it again, since
// a rule can be edited and an invocation can be made by hand.
const (
	Source     = "aws.cognito-idp"
	DetailType = "AWS API Call via CloudTrail"
)

// EventNames are the Cognito calls that delete a user.
var EventNames = []string{"AdminDeleteUser", "DeleteUser"}

// Deprovisioner is what the handler needs of the domain.
type Deprovisioner interface {
	Deprovision(ctx context.Context, sub string) error
}

// Counter counts the outcomes operators watch (metrics.Recorder).
type Counter interface {
	UserDeprovisioned(ctx context.Context)
	DeprovisionSkipped(ctx context.Context, reason string)
}

// Reasons an event is left to reconcile.
const (
	SkipMalformed  = "malformed"
	SkipOtherEvent = "other_event"
	SkipFailedCall = "failed_call"
	SkipNoSub      = "no_sub"
	SkipInvalidSub = "invalid_sub"
	SkipOtherPool  = "other_pool"
)

// Handler deprovisions the users the events name.
type Handler struct {
	svc   Deprovisioner
	pool  string
	log   *slog.Logger
	count Counter
}

// New builds the handler for the users of pool; with pool empty it takes
// the rule's word that an event is about its pool.
func New(svc Deprovisioner, pool string, log *slog.Logger, count Counter) *Handler {
	return &Handler{svc: svc, pool: pool, log: log, count: count}
}

// trailEvent is the part of a CloudTrail record, as EventBridge delivers
// it, that the handler reads. Cognito records the user's sub, never the
// username, for a call about one user.
type trailEvent struct {
	Source     string `json:"source"`
	DetailType string `json:"detail-type"`
	Detail     struct {
		EventSource       string `json:"eventSource"`
		EventName         string `json:"eventName"`
		ErrorCode         string `json:"errorCode"`
		RequestParameters struct {
			UserPoolID string `json:"userPoolId"`
		} `json:"requestParameters"`
		AdditionalEventData struct {
			Sub        string `json:"sub"`
			UserPoolID string `json:"userPoolId"`
		} `json:"additionalEventData"`
	} `json:"detail"`
}

// Handle deprovisions the user one event names. It fails only when the
// delete failed (Kandy or our store is down, or a request for the same
// user holds the record), so the invocation is retried. An event it cannot
// act on succeeds, logged and counted, so it is not retried for ever: the
// scheduled reconcile finds what it left.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) error {
	var ev trailEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return h.skip(ctx, SkipMalformed, "deprovision: the event is not a CloudTrail record; left to reconcile")
	}
	d := ev.Detail
	if ev.Source != Source || ev.DetailType != DetailType || !slices.Contains(EventNames, d.EventName) {
		return h.skip(ctx, SkipOtherEvent, "deprovision: not a user deletion; ignored", "source", ev.Source, "event_name", d.EventName)
	}
	if d.ErrorCode != "" {
		return h.skip(ctx, SkipFailedCall, "deprovision: the call failed and deleted nobody; ignored", "event_name", d.EventName, "error_code", d.ErrorCode)
	}
	for _, pool := range []string{d.RequestParameters.UserPoolID, d.AdditionalEventData.UserPoolID} {
		if h.pool != "" && pool != "" && pool != h.pool {
			return h.skip(ctx, SkipOtherPool, "deprovision: a user of another pool; ignored", "event_name", d.EventName, "user_pool_id", pool)
		}
	}
	sub := d.AdditionalEventData.Sub
	if sub == "" {
		return h.skip(ctx, SkipNoSub, "deprovision: the event names no sub; left to reconcile", "event_name", d.EventName)
	}
	if userid.Validate(sub) != nil {
		return h.skip(ctx, SkipInvalidSub, "deprovision: the event's sub is not a valid one; left to reconcile", "event_name", d.EventName)
	}
	if err := h.svc.Deprovision(ctx, sub); err != nil {
		h.log.ErrorContext(ctx, "deprovision: failed; the invocation is retried", "sub", sub, "event_name", d.EventName,
			"reason", provision.CodeOf(err), "err", err.Error())
		return err
	}
	h.log.InfoContext(ctx, "deprovision: the user left the pool; their Kandy account is deleted", "sub", sub, "event_name", d.EventName)
	h.count.UserDeprovisioned(ctx)
	return nil
}

func (h *Handler) skip(ctx context.Context, reason, msg string, attrs ...any) error {
	level := slog.LevelWarn
	if reason == SkipOtherEvent || reason == SkipFailedCall || reason == SkipOtherPool {
		level = slog.LevelInfo
	}
	h.log.Log(ctx, level, msg, append(attrs, "reason", reason)...)
	h.count.DeprovisionSkipped(ctx, reason)
	return nil
}
