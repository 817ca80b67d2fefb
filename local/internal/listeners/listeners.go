// Package listeners reads from /proc, with prometheus/procfs, which TCP
// ports a tree of processes listens on: the truth of what a page could
// reach, whatever a list of servers says.
package listeners

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// tcpListen is the state of a listening socket in /proc/net/tcp.
const tcpListen = 0x0A

// Tree is pid and every process descended from it.
func Tree(pid int) ([]int, error) {
	procs, err := procfs.AllProcs()
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, p := range procs {
		stat, err := p.Stat()
		if err != nil {
			continue // it exited since the listing
		}
		children[stat.PPID] = append(children[stat.PPID], p.PID)
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree, nil
}

// Socket is a listening TCP socket and the process that holds it.
type Socket struct {
	Addr netip.AddrPort
	PID  int
}

// Listening are the listening TCP sockets, IPv4 and IPv6, that pids hold.
func Listening(pids []int) ([]Socket, error) {
	owner := map[uint64]int{} // socket inode → pid
	for _, pid := range pids {
		p, err := procfs.NewProc(pid)
		if err != nil {
			continue
		}
		targets, _ := p.FileDescriptorTargets()
		for _, t := range targets {
			if inode, ok := strings.CutPrefix(t, "socket:["); ok {
				if n, err := strconv.ParseUint(strings.TrimSuffix(inode, "]"), 10, 64); err == nil {
					owner[n] = pid
				}
			}
		}
	}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil, err
	}
	var out []Socket
	// procfs would have sock_diag over netlink read instead, whose messages
	// we would then write by hand; the /proc tables say the same here.
	//lint:ignore SA1019 the /proc/net/tcp tables are what this reads on purpose
	for _, table := range []func() (procfs.NetTCP, error){fs.NetTCP, fs.NetTCP6} {
		lines, err := table()
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			pid, ok := owner[l.Inode]
			if !ok || l.St != tcpListen {
				continue
			}
			ip, _ := netip.AddrFromSlice(l.LocalAddr)
			out = append(out, Socket{Addr: netip.AddrPortFrom(ip.Unmap(), uint16(l.LocalPort)), PID: pid})
		}
	}
	return out, nil
}

// TCPPorts are the TCP ports on which any of pids listens, sorted.
func TCPPorts(pids []int) ([]int, error) {
	socks, err := Listening(pids)
	if err != nil {
		return nil, err
	}
	var ports []int
	for _, s := range socks {
		ports = append(ports, int(s.Addr.Port()))
	}
	slices.Sort(ports)
	return slices.Compact(ports), nil
}
