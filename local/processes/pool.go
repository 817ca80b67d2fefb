package processes

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/runtimeapi"
)

// ErrThrottled is an invocation that found every emulator of its function
// busy, at the concurrency limit, for the whole wait: Lambda's
// TooManyRequestsException.
var ErrThrottled = errors.New("the function is at its concurrency limit")

// errPoolStopped is an invocation after Stop.
var errPoolStopped = errors.New("the function's pool is stopped")

// PoolOptions shape a Pool.
type PoolOptions struct {
	// Concurrency is the most emulators, hence invocations, at once;
	// default 4.
	Concurrency int
	// Wait is how long an invocation waits for a free emulator at the
	// limit before ErrThrottled; default 5 s.
	Wait time.Duration
	// Output, if set, gives each new emulator a writer for its output.
	Output func() io.Writer
	// Replaced, if set, hears of an environment that left the pool
	// unasked: it exited, or its invocation timed out. Its Tail says why.
	Replaced func(p *Process, why string)
	// Bootstrap is the binary to run; default BootstrapPath(id).
	Bootstrap string
	// Runtime, if set, serves each environment the Runtime API: the pool
	// runs Sandboxes. Otherwise it runs each under aws-lambda-rie.
	Runtime *runtimeapi.Server
}

// environment is one execution environment: a Sandbox or a Function under
// the emulator.
type environment interface {
	Call(ctx context.Context, event []byte) ([]byte, error)
	Done() <-chan struct{}
	Exited() bool
	Follow(w io.Writer)
	Stop()
	process() *Process
}

func (p *Process) process() *Process { return p }

// Pool runs a function as Lambda scales it: an invocation takes an idle
// execution environment or starts one, up to the concurrency limit; each
// serves one invocation at a time, as Lambda's do. One that dies or times
// out is dropped, and the next invocation starts another.
type Pool struct {
	ID    string
	env   []string
	o     PoolOptions
	slots chan struct{}

	mu     sync.Mutex
	idle   []environment
	all    map[environment]bool
	closed bool
}

// StartPool starts a pool for bin/<id>/bootstrap with env (see
// StartFunction), with one emulator ready.
func StartPool(id string, env []string, o PoolOptions) (*Pool, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Wait <= 0 {
		o.Wait = 5 * time.Second
	}
	if o.Bootstrap == "" {
		o.Bootstrap = BootstrapPath(id)
	}
	p := &Pool{ID: id, env: env, o: o, slots: make(chan struct{}, o.Concurrency), all: map[environment]bool{}}
	fn, err := p.start()
	if err != nil {
		return nil, err
	}
	p.idle = append(p.idle, fn)
	return p, nil
}

// Invoke runs one invocation on a free emulator: the payload, a
// *FunctionError, ErrThrottled, or the emulator's own failure.
func (p *Pool) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	if err := p.reserve(ctx); err != nil {
		return nil, err
	}
	defer func() { <-p.slots }()
	fn, err := p.take()
	if err != nil {
		return nil, err
	}
	out, err := fn.Call(ctx, event)
	p.release(ctx, fn, err)
	return out, err
}

// reserve takes one of the Concurrency slots, waiting at most o.Wait.
func (p *Pool) reserve(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(p.o.Wait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrThrottled
	case <-ctx.Done():
		return ctx.Err()
	}
}

// take returns an idle environment, or starts one.
func (p *Pool) take() (environment, error) {
	var exited []environment
	defer func() {
		// Ended while idle, before watch saw it.
		for _, fn := range exited {
			p.retire(fn, "exited")
		}
	}()
	p.mu.Lock()
	for len(p.idle) > 0 {
		fn := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if !fn.Exited() {
			p.mu.Unlock()
			return fn, nil
		}
		exited = append(exited, fn)
	}
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, errPoolStopped
	}
	return p.start()
}

// release puts an environment back, unless it cannot serve again: it
// exited, timed out, or its caller left mid-invocation, so it may still
// be busy and a second invocation would overlap. One that ended while it
// served is reported here; watch reports one that ends while idle.
func (p *Pool) release(ctx context.Context, fn environment, err error) {
	var fe *FunctionError
	switch {
	case ctx.Err() != nil:
		p.retire(fn, "")
	case errors.As(err, &fe) && fe.Fatal:
		p.retire(fn, fe.Type)
	case err != nil && !errors.As(err, &fe):
		// Unreachable: most likely it died; give its exit a moment to show.
		select {
		case <-fn.Done():
			p.retire(fn, "exited")
		case <-time.After(time.Second):
			p.retire(fn, "unreachable")
		}
	case fn.Exited():
		p.retire(fn, "exited")
	default:
		p.mu.Lock()
		if !p.closed {
			p.idle = append(p.idle, fn)
		}
		p.mu.Unlock()
	}
}

// retire stops an environment; why, if set, is reported.
func (p *Pool) retire(fn environment, why string) {
	p.mu.Lock()
	known := p.all[fn]
	delete(p.all, fn)
	p.mu.Unlock()
	if known && why != "" && p.o.Replaced != nil {
		p.o.Replaced(fn.process(), why)
	}
	fn.Stop()
}

func (p *Pool) start() (environment, error) {
	var fn environment
	var err error
	if p.o.Runtime != nil {
		fn, err = StartSandbox(p.o.Runtime, p.ID, p.o.Bootstrap, p.env, 1<<20)
	} else {
		fn, err = startFunction(p.ID, p.o.Bootstrap, p.env, 1<<20)
	}
	if err != nil {
		return nil, err
	}
	if p.o.Output != nil {
		fn.Follow(p.o.Output())
	}
	p.mu.Lock()
	closed := p.closed
	if !closed {
		p.all[fn] = true
	}
	p.mu.Unlock()
	if closed {
		fn.Stop()
		return nil, errPoolStopped
	}
	go p.watch(fn)
	return fn, nil
}

// watch reports an environment that exits while idle in the pool, and
// drops it; release deals with one that exits while it serves.
func (p *Pool) watch(fn environment) {
	<-fn.Done()
	p.mu.Lock()
	idle := slices.Contains(p.idle, fn)
	unexpected := idle && p.all[fn] && !p.closed
	if idle {
		delete(p.all, fn)
		p.idle = slices.DeleteFunc(p.idle, func(f environment) bool { return f == fn })
	}
	p.mu.Unlock()
	if unexpected && p.o.Replaced != nil {
		p.o.Replaced(fn.process(), "exited")
	}
	if idle {
		fn.Stop() // what it left running in its process group
	}
}

// Size is how many emulators run now.
func (p *Pool) Size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.all)
}

// Stop stops every emulator.
func (p *Pool) Stop() {
	p.mu.Lock()
	p.closed = true
	fns := make([]environment, 0, len(p.all))
	for fn := range p.all {
		fns = append(fns, fn)
	}
	p.all, p.idle = map[environment]bool{}, nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Add(1)
		go func() { defer wg.Done(); fn.Stop() }()
	}
	wg.Wait()
}
