// Package slowclient is a client that sends a request a byte at a time,
// for the tests that check a server cuts it.
package slowclient

import (
	"fmt"
	"io"
	"net"
	"time"
)

// Trickle sends head, then a byte every gap, until the server ends the
// connection (how long that took) or limit passes (an error).
func Trickle(addr, head string, gap, limit time.Duration) (time.Duration, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, head); err != nil {
		return 0, err
	}
	closed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, c); close(closed) }()
	for time.Since(start) < limit {
		select {
		case <-closed:
			return time.Since(start), nil
		case <-time.After(gap):
			if _, err := c.Write([]byte("x")); err != nil {
				return time.Since(start), nil
			}
		}
	}
	return 0, fmt.Errorf("still connected after %v", limit)
}
