package trigger

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/signupqueue"
)

type subErrs map[string]error

func (s subErrs) Ensure(_ context.Context, sub string, _ provision.EnsureOptions) (provision.Account, bool, error) {
	return provision.Account{UserID: "u"}, true, s[sub]
}

type fakeDLQ struct {
	sent []string // reasons
	err  error
}

func (f *fakeDLQ) Send(_ context.Context, _ signupqueue.Message, reason provision.Code) error {
	f.sent = append(f.sent, string(reason))
	return f.err
}
func (f *fakeDLQ) SendRaw(_ context.Context, _ string, reason provision.Code) error {
	f.sent = append(f.sent, string(reason))
	return f.err
}

func msg(id, body string) events.SQSMessage {
	return events.SQSMessage{MessageId: id, Body: body, Attributes: map[string]string{"ApproximateReceiveCount": "2"}}
}

func TestRetryWorker(t *testing.T) {
	ensure := subErrs{
		"down":  provision.ErrKandyUnavailable,
		"busy":  provision.ErrInProgress,
		"quota": provision.ErrQuotaExceeded,
	}
	dlq := &fakeDLQ{}
	w := NewRetryWorker(ensure, dlq, quiet)
	resp, err := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		msg("1", `{"sub":"ok","user_pool_id":"p","attempt":1}`),
		msg("2", `{"sub":"down","user_pool_id":"p","attempt":1}`),
		msg("3", `{"sub":"quota","user_pool_id":"p","attempt":1}`),
		msg("4", `not json`),
		msg("5", `{"sub":"busy","user_pool_id":"p","attempt":1}`),
		msg("6", `{"sub":"","attempt":1}`),
		msg("7", `{"sub":"ok","extra":1}`),
	}})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if len(failed) != 2 || failed[0] != "2" || failed[1] != "5" {
		t.Fatalf("batch item failures = %v, want [2 5]", failed)
	}
	want := []string{"kandy_quota_exceeded", "invalid_request", "invalid_request", "invalid_request"}
	if len(dlq.sent) != len(want) {
		t.Fatalf("dead letters = %v, want %v", dlq.sent, want)
	}
	for i := range want {
		if dlq.sent[i] != want[i] {
			t.Fatalf("dead letters = %v, want %v", dlq.sent, want)
		}
	}
}

func TestRetryWorkerKeepsMessagesTheDLQRefuses(t *testing.T) {
	w := NewRetryWorker(subErrs{"quota": provision.ErrQuotaExceeded}, &fakeDLQ{err: errors.New("AccessDenied")}, quiet)
	resp, _ := w.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{msg("1", `{"sub":"quota","attempt":1}`)}})
	if len(resp.BatchItemFailures) != 1 {
		t.Fatalf("a message the DLQ refused was dropped: %+v", resp)
	}
}

type fakeRetrier struct{ reasons []string }

func (f *fakeRetrier) Send(_ context.Context, m signupqueue.Message, reason provision.Code) error {
	if m.Sub != "s1" || m.Attempt != 1 || m.UserPoolID != "p" {
		return errors.New("unexpected message")
	}
	f.reasons = append(f.reasons, string(reason))
	return nil
}

func TestTriggerQueuesFailedSignUps(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want []string
	}{
		{nil, nil},
		{provision.ErrKandyUnavailable, []string{"kandy_unavailable"}},
		{provision.ErrInProgress, []string{"provisioning_in_progress"}},
		{provision.ErrQuotaExceeded, []string{"kandy_quota_exceeded"}},
	} {
		r := &fakeRetrier{}
		out, _ := New(&fakeEnsurer{err: tt.err}, quiet, 0, r).Handle(context.Background(), []byte(signUp))
		if string(out) != signUp || len(r.reasons) != len(tt.want) || (len(tt.want) == 1 && r.reasons[0] != tt.want[0]) {
			t.Errorf("err %v: queued %v, want %v", tt.err, r.reasons, tt.want)
		}
	}
}
