// Package measure is one measured number as make bench and make storm
// report it, in bench/*.json and bench/*.md.
package measure

// Result is one number, with its budget when it has one. A budget is a
// limit make bench fails on; a goal is a target it reports, met or not.
type Result struct {
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	Budget  string  `json:"budget,omitempty"`
	Pass    *bool   `json:"pass,omitempty"`
	Goal    string  `json:"goal,omitempty"`
	GoalMet *bool   `json:"goal_met,omitempty"`
	Note    string  `json:"note,omitempty"`
}

// Check is ok, for Result.Pass.
func Check(ok bool) *bool { return &ok }
