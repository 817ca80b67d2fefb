//go:build linux

package kandy_test

import (
	"context"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/kandy"
)

// dial connects with the default HTTP client's own dialer.
func dial(ctx context.Context, t *testing.T, addr string) (net.Conn, error) {
	t.Helper()
	tr, ok := kandy.NewHTTPClient().Transport.(*http.Transport)
	if !ok || tr.DialContext == nil {
		t.Fatalf("transport %T has no dialer of its own", kandy.NewHTTPClient().Transport)
	}
	return tr.DialContext(ctx, "tcp", addr)
}

// TestConnectionsToKandyAreKeptAlive: an idle pooled connection is probed
// after 30 s, so one a NAT gateway dropped is found before a call uses it.
func TestConnectionsToKandyAreKeptAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := dial(context.Background(), t, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var on, idle int
	var opErr error
	if err := raw.Control(func(fd uintptr) {
		if on, opErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); opErr == nil {
			idle, opErr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		}
	}); err != nil || opErr != nil {
		t.Fatal(err, opErr)
	}
	if on != 1 || idle != 30 {
		t.Errorf("keep-alive %d after %d s, want on after 30 s", on, idle)
	}
}

// TestAConnectionKandyNeverAcceptsFailsAfter3s: a dial that gets no answer
// gives up after 3 s, leaving most of the call's time to a retry. The
// listener's accept queue is full, so the kernel drops the next SYN.
func TestAConnectionKandyNeverAcceptsFailsAfter3s(t *testing.T) {
	addr := fullListener(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	start := time.Now()
	conn, err := dial(ctx, t, addr)
	elapsed := time.Since(start)
	if err == nil {
		conn.Close()
		t.Fatal("dialed a listener that accepts nothing")
	}
	if elapsed < 2900*time.Millisecond || elapsed > 4500*time.Millisecond {
		t.Errorf("dial gave up after %v (%v), want 3 s", elapsed, err)
	}
}

// fullListener listens with a backlog of 0 and fills its accept queue,
// returning its address.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	// Fill the queue: each dial that completes takes a place; the first
	// that does not within 200 ms found it full.
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("the accept queue never filled")
	return ""
}
