package localrun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
)

// Rule is one of the template's EventBridge rules, on a function, as the
// local stack runs it.
type Rule struct {
	// Name is the rule as SAM names it: the function's id and its event's.
	Name     string
	Function string
	// Pattern is the rule's event pattern as the template writes it; its
	// Refs (this stack's pool) are resolved at each delivery, since the
	// pool starts after the functions.
	Pattern any
	// Retries is the function's EventInvokeConfig MaximumRetryAttempts
	// (Lambda's default, 2): how often a failed invocation is tried again.
	Retries int
	// OnFailure is the URL of the queue that receives the record of an
	// invocation that failed every try; empty for none.
	OnFailure string
}

// EventBus delivers events to the rules' functions as EventBridge and
// Lambda's asynchronous invocation do: in the background, each failed
// invocation tried again Retries times, then recorded on the OnFailure
// queue. Lambda waits about one, then two minutes between tries; the
// local bus waits Backoff.
type EventBus struct {
	Rules []Rule
	// Backoff are the waits before each retry; the last repeats.
	Backoff []time.Duration

	pools map[string]processes.Invoker
	// resolve evaluates a pattern's intrinsics as the stack stands now.
	resolve func(pattern any) (any, error)
	sqs     *sqs.Client
	log     *slog.Logger
	ctx     context.Context
	wg      sync.WaitGroup
}

// rules reads the template's EventBridgeRule events of the functions
// started.
func (s *Stack) rules(tpl *samtemplate.Template, started map[string]*processes.Pool) ([]Rule, error) {
	var out []Rule
	for _, fn := range tpl.Functions() {
		if started[fn] == nil {
			continue
		}
		props := tpl.Resources[fn].Properties
		evs, _ := props["Events"].(map[string]any)
		for name, e := range evs {
			ev, _ := e.(map[string]any)
			if ev["Type"] != "EventBridgeRule" {
				continue
			}
			p, _ := ev["Properties"].(map[string]any)
			r := Rule{Name: fn + name, Function: fn, Pattern: p["Pattern"], Retries: 2}
			cfg, _ := props["EventInvokeConfig"].(map[string]any)
			if n, ok := cfg["MaximumRetryAttempts"].(int); ok {
				r.Retries = n
			}
			dest, _ := get(cfg, "DestinationConfig", "OnFailure", "Destination").(map[string]any)
			if att, _ := dest["Fn::GetAtt"].([]string); len(att) == 2 {
				q, ok := s.Queues[att[0]]
				if !ok {
					return nil, fmt.Errorf("%s: the on-failure destination %s is not a queue of the stack", fn, att[0])
				}
				r.OnFailure = q.URL
			}
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func get(v any, path ...string) any {
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// resolver evaluates a template value's intrinsics as the stack stands
// when it is called.
func (s *Stack) resolver(tpl *samtemplate.Template) func(v any) (any, error) {
	return func(v any) (any, error) {
		refs, err := s.refs(tpl)
		if err != nil {
			return nil, err
		}
		return resolve(v, refs)
	}
}

// Match is how many rules event matches.
func (b *EventBus) Match(event []byte) int { return len(b.matching(event)) }

// matching are the rules event matches; none if it is not JSON.
func (b *EventBus) matching(event []byte) []Rule {
	var ev map[string]any
	if json.Unmarshal(event, &ev) != nil {
		return nil
	}
	var out []Rule
	for _, r := range b.Rules {
		if b.matches(r, ev) {
			out = append(out, r)
		}
	}
	return out
}

// matches reports whether ev matches r's pattern as the stack stands; a
// pattern that does not resolve matches nothing.
func (b *EventBus) matches(r Rule, ev map[string]any) bool {
	pattern := r.Pattern
	if b.resolve != nil {
		var err error
		if pattern, err = b.resolve(pattern); err != nil {
			b.log.Error("event bus: the rule's pattern does not resolve", "rule", r.Name, "err", err)
			return false
		}
	}
	p, _ := pattern.(map[string]any)
	return samtemplate.MatchEventPattern(p, ev)
}

// Publish delivers an event to every rule it matches, in the background,
// and returns how many it matched.
func (b *EventBus) Publish(event []byte) int {
	rules := b.matching(event)
	for _, r := range rules {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.deliver(r, event)
		}()
	}
	return len(rules)
}

// Wait returns when every delivery under way has ended.
func (b *EventBus) Wait() { b.wg.Wait() }

// deliver invokes the rule's function until it succeeds or its retries
// are spent. A throttled invocation waits and is not counted, as Lambda's
// queue of asynchronous events does.
func (b *EventBus) deliver(r Rule, event []byte) {
	tries := 0
	for {
		_, err := b.pools[r.Function].Invoke(b.ctx, event)
		if err == nil || b.ctx.Err() != nil {
			return
		}
		if !errors.Is(err, processes.ErrThrottled) {
			tries++
		}
		if tries > r.Retries {
			b.log.Error("events: the invocation failed every try", "rule", r.Name, "tries", tries, "err", err.Error())
			b.deadLetter(r, event, tries, err)
			return
		}
		b.log.Warn("events: the invocation failed; it will be tried again", "rule", r.Name, "tries", tries, "err", err.Error())
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(b.Backoff[min(max(tries-1, 0), len(b.Backoff)-1)]):
		}
	}
}

// deadLetter sends the record Lambda sends to an on-failure destination.
func (b *EventBus) deadLetter(r Rule, event []byte, tries int, cause error) {
	if r.OnFailure == "" {
		return
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	var fe *processes.FunctionError
	response := map[string]any{"errorType": "ServiceException", "errorMessage": cause.Error()}
	if errors.As(cause, &fe) {
		response = map[string]any{"errorType": fe.Type, "errorMessage": fe.Message}
	}
	record, _ := json.Marshal(map[string]any{
		"version": "1.0", "timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"requestContext": map[string]any{"requestId": hex.EncodeToString(id), "functionArn": FunctionARN(r.Function) + ":$LATEST",
			"condition": "RetriesExhausted", "approximateInvokeCount": tries},
		"requestPayload":  json.RawMessage(event),
		"responseContext": map[string]any{"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
		"responsePayload": response,
	})
	if _, err := b.sqs.SendMessage(context.WithoutCancel(b.ctx), &sqs.SendMessageInput{QueueUrl: aws.String(r.OnFailure), MessageBody: aws.String(string(record))}); err != nil {
		b.log.Error("events: the on-failure destination refused the record", "rule", r.Name, "err", err.Error())
	}
}
