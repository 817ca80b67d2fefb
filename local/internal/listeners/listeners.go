// Package listeners reads from /proc which TCP ports a tree of processes
// listens on: the truth of what a page could reach, whatever a list of
// servers says.
package listeners

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Tree is pid and every process descended from it.
func Tree(pid int) ([]int, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, f := range stats {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue // it exited since the glob
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		rest := string(raw[strings.LastIndexByte(string(raw), ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		child, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		children[ppid] = append(children[ppid], child)
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
	owner := map[string]int{} // socket inode → pid
	for _, pid := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if inode, ok := strings.CutPrefix(target, "socket:["); ok && err == nil {
				owner[strings.TrimSuffix(inode, "]")] = pid
			}
		}
	}
	var out []Socket
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		listening, err := listeningInodes(table)
		if err != nil {
			return nil, err
		}
		for inode, addr := range listening {
			if pid, ok := owner[inode]; ok {
				out = append(out, Socket{Addr: addr, PID: pid})
			}
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

// listeningInodes maps the inode of each listening socket in a
// /proc/net/tcp table to its address.
func listeningInodes(table string) (map[string]netip.AddrPort, error) {
	f, err := os.Open(table)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]netip.AddrPort{}
	lines := bufio.NewScanner(f)
	lines.Scan() // the header
	for lines.Scan() {
		// sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
		fields := strings.Fields(lines.Text())
		if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
			continue
		}
		addr, err := parseAddr(fields[1])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", table, err)
		}
		out[fields[9]] = addr
	}
	return out, lines.Err()
}

// parseAddr reads /proc/net/tcp's address:port: the address in hex, each
// 32-bit word in the machine's (little-endian) order, the port in hex.
func parseAddr(s string) (netip.AddrPort, error) {
	hexIP, hexPort, _ := strings.Cut(s, ":")
	port, err1 := strconv.ParseUint(hexPort, 16, 16)
	raw, err2 := hex.DecodeString(hexIP)
	if err1 != nil || err2 != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("local address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	ip, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
}
