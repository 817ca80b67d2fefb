// Package fakecloudtrail answers the three CloudTrail calls `kandy-provisioner
// doctor` makes (DescribeTrails, GetTrailStatus, GetEventSelectors) from
// trails a test sets. No CloudTrail server can run locally.
package fakecloudtrail

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// Trail is one trail as the calls describe it.
type Trail struct {
	Name, ARN, HomeRegion string
	MultiRegion, Logging  bool
	// EventSelectors and AdvancedEventSelectors are the JSON values
	// GetEventSelectors answers, in CloudTrail's shapes.
	EventSelectors, AdvancedEventSelectors []map[string]any
}

// Server holds the account's trails.
type Server struct {
	mu     sync.Mutex
	trails []Trail
}

// Set replaces the trails.
func (s *Server) Set(trails ...Trail) {
	s.mu.Lock()
	s.trails = trails
	s.mu.Unlock()
}

const target = "CloudTrail_20131101."

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), target)
	var in struct{ Name, TrailName string }
	if !ok || r.Method != http.MethodPost || json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in) != nil {
		fail(w, "InvalidRequestException", "not a CloudTrail request")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op {
	case "DescribeTrails":
		list := []map[string]any{}
		for _, t := range s.trails {
			list = append(list, map[string]any{"Name": t.Name, "TrailARN": t.ARN, "HomeRegion": t.HomeRegion, "IsMultiRegionTrail": t.MultiRegion})
		}
		answer(w, map[string]any{"trailList": list})
	case "GetTrailStatus":
		if t, ok := s.find(in.Name); ok {
			answer(w, map[string]any{"IsLogging": t.Logging})
			return
		}
		fail(w, "TrailNotFoundException", "Unknown trail")
	case "GetEventSelectors":
		if t, ok := s.find(in.TrailName); ok {
			answer(w, map[string]any{"TrailARN": t.ARN, "EventSelectors": t.EventSelectors, "AdvancedEventSelectors": t.AdvancedEventSelectors})
			return
		}
		fail(w, "TrailNotFoundException", "Unknown trail")
	default:
		fail(w, "UnknownOperationException", "only DescribeTrails, GetTrailStatus and GetEventSelectors are served")
	}
}

// find looks a trail up by name or ARN, as CloudTrail does.
func (s *Server) find(id string) (Trail, bool) {
	for _, t := range s.trails {
		if id == t.Name || id == t.ARN {
			return t, true
		}
	}
	return Trail{}, false
}

func answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}
