package signupretry

import (
	"math"
	"time"
)

// Backoff is the retry worker's schedule: how long a sign-up it could not
// finish stays hidden in the retry queue before SQS hands it over again.
// The delay after the n-th receive is First·Factor^(n-1), at most the
// queue's visibility timeout, less a random share of up to Jitter so that
// sign-ups that failed together do not all come back together. SQS takes
// whole seconds.
type Backoff struct {
	First  time.Duration
	Factor int
	Jitter float64
}

// DefaultBackoff is 5 s, 10 s, 20 s, … Doubling rather than tripling: a
// sign-up whose receive just missed Kandy's recovery then waits about as
// long again as the outage had lasted, not twice as long.
var DefaultBackoff = Backoff{First: 5 * time.Second, Factor: 2, Jitter: 0.2}

// Longest is the delay after the receive-th receive (counted from 1), at
// most limit, in whole seconds.
func (b Backoff) Longest(receive int, limit time.Duration) time.Duration {
	d := b.First
	for i := 1; i < receive && d < limit; i++ {
		d *= time.Duration(b.Factor)
	}
	return min(d, limit).Truncate(time.Second)
}

// Shortest is the least delay the jitter can make of Longest.
func (b Backoff) Shortest(receive int, limit time.Duration) time.Duration {
	hi := b.Longest(receive, limit).Seconds()
	return time.Duration(math.Ceil(hi*(1-b.Jitter))) * time.Second
}

// Delay is the delay after the receive-th receive for r, uniform in
// [0, 1): whole seconds from Shortest to Longest. A message without a
// receive count is taken as received once.
func (b Backoff) Delay(receive int, limit time.Duration, r float64) time.Duration {
	receive = max(receive, 1)
	lo, hi := b.Shortest(receive, limit), b.Longest(receive, limit)
	steps := int((hi-lo)/time.Second) + 1
	return min(lo+time.Duration(int(r*float64(steps)))*time.Second, hi)
}

// Window is the least time a message that fails every receive spends
// between its first receive and the dead-letter queue, when the queue
// moves it after maxReceives receives: the sum of the shortest delays.
func (b Backoff) Window(limit time.Duration, maxReceives int) time.Duration {
	var w time.Duration
	for n := 1; n <= maxReceives; n++ {
		w += b.Shortest(n, limit)
	}
	return w
}

// ReceivesFor is the least maxReceiveCount whose Window is at least
// window; 0 if no count reaches it (a queue whose delays are all 0 s).
func (b Backoff) ReceivesFor(window, limit time.Duration) int {
	var w time.Duration
	for n := 1; n <= 10_000; n++ {
		if w += b.Shortest(n, limit); w >= window {
			return n
		}
	}
	return 0
}
