// Package listeners reads from /proc which TCP ports a tree of processes
// listens on: the truth of what a page could reach, whatever a list of
// servers says.
package listeners

import (
	"bufio"
	"fmt"
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

// TCPPorts are the TCP ports on which any of pids listens, sorted.
func TCPPorts(pids []int) ([]int, error) {
	owned := map[string]bool{} // socket inodes
	for _, pid := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if inode, ok := strings.CutPrefix(target, "socket:["); ok && err == nil {
				owned[strings.TrimSuffix(inode, "]")] = true
			}
		}
	}
	var ports []int
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		listening, err := listeningInodes(table)
		if err != nil {
			return nil, err
		}
		for inode, port := range listening {
			if owned[inode] {
				ports = append(ports, port)
			}
		}
	}
	slices.Sort(ports)
	return slices.Compact(ports), nil
}

// listeningInodes maps the inode of each listening socket in a
// /proc/net/tcp table to its port.
func listeningInodes(table string) (map[string]int, error) {
	f, err := os.Open(table)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int{}
	lines := bufio.NewScanner(f)
	lines.Scan() // the header
	for lines.Scan() {
		// sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
		fields := strings.Fields(lines.Text())
		if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
			continue
		}
		_, hexPort, _ := strings.Cut(fields[1], ":")
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("%s: local address %q", table, fields[1])
		}
		out[fields[9]] = int(port)
	}
	return out, lines.Err()
}
