// Package logging gives JSON logs that carry the Lambda request id.
package logging

import (
	"context"
	"io"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// New returns a JSON logger whose lines carry the request id of the
// invocation in their context, if any.
func New(w io.Writer) *slog.Logger {
	return slog.New(requestID{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})})
}

type requestID struct{ slog.Handler }

func (h requestID) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		r.AddAttrs(slog.String("requestId", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestID) WithAttrs(as []slog.Attr) slog.Handler { return requestID{h.Handler.WithAttrs(as)} }
func (h requestID) WithGroup(n string) slog.Handler       { return requestID{h.Handler.WithGroup(n)} }
