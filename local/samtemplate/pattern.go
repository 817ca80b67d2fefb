package samtemplate

// MatchEventPattern reports whether an EventBridge event matches a rule's
// pattern, for the pattern forms the template uses: a list of values, one
// of which the field must equal, and {"exists": false} or {"exists": true};
// a nested object matches field by field; "$or", a list of patterns, one
// of which the object must match as well.
func MatchEventPattern(pattern, event map[string]any) bool {
	for k, want := range pattern {
		if k == "$or" {
			if !oneMatches(want, event) {
				return false
			}
			continue
		}
		got, present := event[k]
		switch w := want.(type) {
		case map[string]any:
			sub, ok := got.(map[string]any)
			if !ok || !MatchEventPattern(w, sub) {
				return false
			}
		case []any:
			if !anyMatches(w, got, present) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func anyMatches(options []any, got any, present bool) bool {
	for _, o := range options {
		if m, ok := o.(map[string]any); ok {
			if exists, ok := m["exists"].(bool); ok && exists == present {
				return true
			}
			continue
		}
		if present && o == got {
			return true
		}
	}
	return false
}

func oneMatches(patterns any, event map[string]any) bool {
	list, _ := patterns.([]any)
	for _, p := range list {
		if m, ok := p.(map[string]any); ok && MatchEventPattern(m, event) {
			return true
		}
	}
	return false
}
