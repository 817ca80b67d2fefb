// Package emfcheck parses log lines as CloudWatch Embedded Metric Format
// and checks them against the specification's rules, for tests.
package emfcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Datum is one metric value a line publishes under one dimension set.
type Datum struct {
	Namespace  string
	Name       string
	Unit       string
	Value      float64
	Dimensions map[string]string
}

var units = map[string]bool{}

func init() {
	for _, u := range strings.Fields(`Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes Gigabytes
		Terabytes Bits Kilobits Megabits Gigabits Terabits Percent Count Bytes/Second Kilobytes/Second
		Megabytes/Second Gigabytes/Second Terabytes/Second Bits/Second Kilobits/Second Megabits/Second
		Gigabits/Second Terabits/Second Count/Second None`) {
		units[u] = true
	}
}

// IsEMF reports whether a log line claims to be an EMF document.
func IsEMF(line []byte) bool {
	var probe struct {
		AWS json.RawMessage `json:"_aws"`
	}
	return json.Unmarshal(line, &probe) == nil && probe.AWS != nil
}

// directive is one entry of _aws.CloudWatchMetrics.
type directive struct {
	Namespace  *string    `json:"Namespace"`
	Dimensions [][]string `json:"Dimensions"`
	Metrics    []struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	} `json:"Metrics"`
}

// Parse checks one EMF line and returns what CloudWatch would extract.
func Parse(line []byte) ([]Datum, error) {
	var root map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the JSON object")
	}
	var meta struct {
		Timestamp         *float64    `json:"Timestamp"`
		CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
	}
	raw, ok := root["_aws"]
	if !ok {
		return nil, fmt.Errorf("no _aws member")
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("_aws: %w", err)
	}
	if meta.Timestamp == nil || *meta.Timestamp < 1e12 {
		return nil, fmt.Errorf("_aws.Timestamp missing or not in milliseconds")
	}
	if len(meta.CloudWatchMetrics) == 0 {
		return nil, fmt.Errorf("_aws.CloudWatchMetrics is empty")
	}
	var out []Datum
	for _, d := range meta.CloudWatchMetrics {
		data, err := d.data(root)
		if err != nil {
			return nil, err
		}
		out = append(out, data...)
	}
	return out, nil
}

// data is what one directive publishes from the root's members.
func (d directive) data(root map[string]json.RawMessage) ([]Datum, error) {
	if d.Namespace == nil || strings.TrimSpace(*d.Namespace) == "" || len(*d.Namespace) > 1024 {
		return nil, fmt.Errorf("directive without a namespace")
	}
	if d.Dimensions == nil {
		return nil, fmt.Errorf("directive without Dimensions")
	}
	if len(d.Metrics) == 0 || len(d.Metrics) > 100 {
		return nil, fmt.Errorf("directive with %d metrics", len(d.Metrics))
	}
	var out []Datum
	for _, m := range d.Metrics {
		if m.Unit != "" && !units[m.Unit] {
			return nil, fmt.Errorf("metric %q: unknown unit %q", m.Name, m.Unit)
		}
		var v float64
		if err := json.Unmarshal(root[m.Name], &v); err != nil {
			return nil, fmt.Errorf("metric %q: the root has no number by that name", m.Name)
		}
		for _, set := range d.Dimensions {
			dims, err := dimensions(root, set)
			if err != nil {
				return nil, err
			}
			out = append(out, Datum{Namespace: *d.Namespace, Name: m.Name, Unit: m.Unit, Value: v, Dimensions: dims})
		}
	}
	return out, nil
}

// dimensions reads one dimension set's values from the root.
func dimensions(root map[string]json.RawMessage, set []string) (map[string]string, error) {
	if len(set) > 30 {
		return nil, fmt.Errorf("dimension set of %d keys", len(set))
	}
	dims := map[string]string{}
	for _, name := range set {
		var s string
		v, ok := root[name]
		if !ok {
			return nil, fmt.Errorf("dimension %q is not a member of the root", name)
		}
		if err := json.Unmarshal(v, &s); err != nil || s == "" || len(s) > 1024 {
			return nil, fmt.Errorf("dimension %q must be a non-empty string of at most 1024 characters", name)
		}
		dims[name] = s
	}
	return dims, nil
}

// Sum adds up the values of name whose dimensions equal dims exactly.
func Sum(data []Datum, name string, dims map[string]string) float64 {
	var total float64
	for _, d := range data {
		if d.Name != name || len(d.Dimensions) != len(dims) {
			continue
		}
		match := true
		for k, v := range dims {
			if d.Dimensions[k] != v {
				match = false
			}
		}
		if match {
			total += d.Value
		}
	}
	return total
}
