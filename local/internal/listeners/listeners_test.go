package listeners

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// TestMain doubles as a child that listens, when asked to.
func TestMain(m *testing.M) {
	if os.Getenv("LISTENERS_CHILD") == "1" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.Exit(2)
		}
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
		time.Sleep(30 * time.Second)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A port this process listens on is found; one it closed is not; a child's
// port is found through the tree.
func TestTCPPortsOfATree(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mine := l.Addr().(*net.TCPAddr).Port
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), "LISTENERS_CHILD=1")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	var childs int
	if _, err := fmt.Fscan(out, &childs); err != nil {
		t.Fatal(err)
	}
	tree, err := Tree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tree, child.Process.Pid) {
		t.Fatalf("tree %v lacks the child %d", tree, child.Process.Pid)
	}
	ports, err := TCPPorts(tree)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ports, mine) {
		t.Errorf("ports %v lack %d, listened on", ports, mine)
	}
	if !slices.Contains(ports, childs) {
		t.Errorf("ports %v lack %d, the child's", ports, childs)
	}
	socks, err := Listening(tree)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(socks, func(s Socket) bool { return s.Addr.String() == l.Addr().String() && s.PID == os.Getpid() }) {
		t.Errorf("sockets %v lack %s, held by this process", socks, l.Addr())
	}
	if slices.Contains(ports, gone) {
		t.Errorf("ports %v hold %d, closed", ports, gone)
	}
	l.Close()
	if ports, _ = TCPPorts(tree); slices.Contains(ports, mine) {
		t.Errorf("after closing: ports %v still hold %d", ports, mine)
	}
}
