package localrun

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/local/runtimeapi"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
)

// FunctionsOptions shape StartFunctions.
type FunctionsOptions struct {
	// Port serves the Lambda Invoke API (0: a free one).
	Port int
	// Concurrency is each function's emulator limit, Wait how long an
	// invocation at the limit waits (see processes.PoolOptions).
	Concurrency int
	Wait        time.Duration
	// Output, if set, gives each emulator of function id a writer for its
	// output.
	Output func(id string) io.Writer
	// Replaced, if set, hears of an execution environment that exited or
	// timed out.
	Replaced func(p *processes.Process, why string)
	Log      *slog.Logger
	// EventBackoff are the waits of the EventBus between the tries of an
	// asynchronous invocation; default 1 s, then 2 s.
	EventBackoff []time.Duration
}

// Functions are the template's functions, each a pool of emulators
// behind the Lambda Invoke API, with the template's event source mappings
// polling their queues.
type Functions struct {
	Pools map[string]*processes.Pool
	URL   string // the Invoke API's base URL
	// Sources are the running event source mappings.
	Sources []*processes.EventSource
	// Events delivers events to the template's EventBridge rules.
	Events *EventBus
}

// StartFunctions starts every function a deploy with the parameters' local
// values would create (not the scheduled reconcile, off by default) with
// FunctionEnv, each a pool of execution environments served by the run's
// Runtime API, the Invoke API and the event source mappings. They stop with the stack.
// The Invoke API applies the functions' AWS::Lambda::Permission resources
// to the services that invoke them (see permits).
func (s *Stack) StartFunctions(o FunctionsOptions) (*Functions, error) {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	refs, err := s.refs(tpl)
	if err != nil {
		return nil, err
	}
	rt, err := runtimeapi.Start(Region, o.Log)
	if err != nil {
		return nil, err
	}
	s.stops = append(s.stops, rt.Close)
	f := &Functions{Pools: map[string]*processes.Pool{}}
	invokers := map[string]processes.Invoker{}
	for _, id := range tpl.Functions() {
		if !tpl.Deployed(id, refs) {
			continue // as a deploy with these parameters
		}
		p, err := s.startPool(id, o, rt)
		if err != nil {
			return nil, err
		}
		f.Pools[id], invokers[id] = p, p
	}
	perms, err := lambdaPermissions()
	if err != nil {
		return nil, err
	}
	api := &processes.InvokeAPI{Functions: invokers, Region: Region, Log: o.Log,
		Authorize: func(fn string, c processes.Caller, event []byte) bool { return s.permits(tpl, perms, fn, c, event) }}
	g := s.programs("lambda")
	g.Timeouts = guard.Lambda
	if f.URL, err = s.serve(g, o.Port, api.Handler()); err != nil {
		return nil, err
	}
	if f.Sources, err = s.eventSources(tpl, f, o.Log); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.Events = &EventBus{Backoff: o.EventBackoff, pools: invokers, sqs: s.SQS, log: o.Log, ctx: ctx, resolve: s.resolver(tpl)}
	if len(f.Events.Backoff) == 0 {
		f.Events.Backoff = []time.Duration{time.Second, 2 * time.Second}
	}
	if f.Events.Rules, err = s.rules(tpl, f.Pools); err != nil {
		cancel()
		return nil, err
	}
	var wg sync.WaitGroup
	for _, src := range f.Sources {
		wg.Add(1)
		go func() { defer wg.Done(); src.Run(ctx) }()
	}
	s.stops = append(s.stops, func() { cancel(); wg.Wait(); f.Events.Wait() })
	return f, nil
}

func (s *Stack) startPool(id string, o FunctionsOptions, rt *runtimeapi.Server) (*processes.Pool, error) {
	env, err := s.FunctionEnv(id)
	if err != nil {
		return nil, err
	}
	if env, err = LambdaEnv(id, env); err != nil {
		return nil, err
	}
	po := processes.PoolOptions{Concurrency: o.Concurrency, Wait: o.Wait, Replaced: o.Replaced, Runtime: rt}
	if o.Output != nil {
		po.Output = func() io.Writer { return o.Output(id) }
	}
	p, err := processes.StartPool(id, env, po)
	if err != nil {
		return nil, err
	}
	s.stops = append(s.stops, p.Stop)
	return p, nil
}

// eventSources reads the template's AWS::Lambda::EventSourceMapping
// resources on queues.
func (s *Stack) eventSources(tpl *samtemplate.Template, f *Functions, log *slog.Logger) ([]*processes.EventSource, error) {
	var ids []string
	for id, r := range tpl.Resources {
		if r.Type == "AWS::Lambda::EventSourceMapping" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var out []*processes.EventSource
	for _, id := range ids {
		p := tpl.Resources[id].Properties
		if enabled, ok := p["Enabled"].(bool); ok && !enabled {
			continue
		}
		arn, _ := p["EventSourceArn"].(map[string]any)
		att, _ := arn["Fn::GetAtt"].([]string)
		fn, _ := p["FunctionName"].(map[string]any)
		ref, _ := fn["Ref"].(string)
		if len(att) != 2 || s.Queues[att[0]].URL == "" || f.Pools[ref] == nil {
			return nil, fmt.Errorf("%s: want a queue of the template (with the stack's SQS) and a function, have %v and %v", id, p["EventSourceArn"], p["FunctionName"])
		}
		src := &processes.EventSource{
			SQS: s.SQS, QueueURL: s.Queues[att[0]].URL, QueueARN: s.Queues[att[0]].ARN, Function: f.Pools[ref],
			BatchSize: intOr(p["BatchSize"], 10), Window: time.Duration(intOr(p["MaximumBatchingWindowInSeconds"], 0)) * time.Second,
			ReportBatchItemFailures: slices.Contains(samtemplate.Strings(p["FunctionResponseTypes"]), "ReportBatchItemFailures"),
			Log:                     log,
		}
		out = append(out, src)
	}
	return out, nil
}

func intOr(v any, def int) int {
	if n, ok := v.(int); ok {
		return n
	}
	return def
}
