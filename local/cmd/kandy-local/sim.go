package main

import (
	"encoding/json"
	"math"
	"net/http"
	"sync"

	"github.com/kandy-provisioner/kandy-provisioner/internal/testing/kandysim"
)

// simControl serves, beside the simulator's Kandy API, its local-only
// control endpoints under /_sim: GET /_sim (its state), POST /_sim/outage
// (every Kandy call fails with HTTP 500 from now on) and
// DELETE /_sim/outage (healthy again).
func simControl(h http.Handler, quota int, kandy http.Handler) http.Handler {
	sim, ok := h.(*kandysim.Sim)
	if !ok {
		return kandy
	}
	c := &control{sim: sim, quota: quota}
	m := http.NewServeMux()
	m.Handle("/", kandy)
	m.HandleFunc("GET /_sim", c.state)
	m.HandleFunc("POST /_sim/outage", func(w http.ResponseWriter, r *http.Request) { c.outage(true); c.state(w, r) })
	m.HandleFunc("DELETE /_sim/outage", func(w http.ResponseWriter, r *http.Request) { c.outage(false); c.state(w, r) })
	return m
}

type control struct {
	sim   *kandysim.Sim
	quota int

	mu   sync.Mutex
	down bool
}

func (c *control) outage(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sim.ClearFaults()
	if down {
		c.sim.Inject("", kandysim.FaultHTTP500, math.MaxInt)
	}
	c.down = down
}

func (c *control) state(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	down := c.down
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Healthy bool `json:"healthy"`
		Users   int  `json:"users"`
		Quota   int  `json:"quota"`
	}{!down, len(c.sim.UserIDs()), c.quota})
}
