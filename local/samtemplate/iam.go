package samtemplate

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// awsManaged holds the documents of the AWS managed policies SAM may
// attach, as AWS publishes them in the AWS Managed Policy Reference. A
// role that attaches any other managed policy fails the checks: its
// document must be added here first.
//
//go:embed awsmanaged.json
var awsManagedJSON []byte

// Grant is one action a role allows on one resource pattern, under the
// statement's conditions.
type Grant struct {
	Policy    string // the inline policy's name, or the managed policy's ARN
	Action    string
	Resource  string
	Condition map[string]map[string][]string // operator, key, values
}

func (g Grant) String() string {
	s := fmt.Sprintf("%s on %s (%s)", g.Action, g.Resource, g.Policy)
	if len(g.Condition) > 0 {
		s += fmt.Sprintf(" if %v", g.Condition)
	}
	return s
}

// Allows reports whether the grant allows action on resource in a request
// with the given condition keys. Only StringEquals and StringLike are
// modelled; a grant with any other operator allows nothing here.
func (g Grant) Allows(action, resource string, keys map[string]string) bool {
	if !wildcard(strings.ToLower(g.Action), strings.ToLower(action)) || !wildcard(g.Resource, resource) {
		return false
	}
	for op, conds := range g.Condition {
		for key, want := range conds {
			got, ok := keys[key]
			matched := false
			for _, w := range want {
				switch op {
				case "StringEquals":
					matched = matched || (ok && got == w)
				case "StringLike":
					matched = matched || (ok && wildcard(w, got))
				}
			}
			if !matched {
				return false
			}
		}
	}
	return true
}

// wildcard matches IAM's * and ? (path.Match would stop * at a slash).
func wildcard(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if wildcard(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && wildcard(pattern[1:], s[1:])
	default:
		return s != "" && s[0] == pattern[0] && wildcard(pattern[1:], s[1:])
	}
}

// RoleOf returns the logical id of the role a function runs as.
func (s *Transformed) RoleOf(functionID string) (string, error) {
	role, _ := s.Resolve(s.Resources[functionID].Properties["Role"]).(string)
	id, ok := strings.CutSuffix(strings.TrimPrefix(role, "{"), ".Arn}")
	if !ok || s.Resources[id].Type != "AWS::IAM::Role" {
		return "", fmt.Errorf("%s: role %q is not a role of the stack", functionID, role)
	}
	return id, nil
}

// RoleGrants returns everything a role allows: its inline policies, the
// stack's policies attached to it, and the AWS managed policies it names.
func (s *Transformed) RoleGrants(roleID string) ([]Grant, error) {
	props, _ := s.Resolve(s.Resources[roleID].Properties).(map[string]any)
	var grants []Grant
	inline, _ := props["Policies"].([]any)
	for _, p := range inline {
		m, _ := p.(map[string]any)
		g, err := docGrants(fmt.Sprint(m["PolicyName"]), m["PolicyDocument"])
		if err != nil {
			return nil, err
		}
		grants = append(grants, g...)
	}
	for _, id := range append(s.OfType("AWS::IAM::Policy"), s.OfType("AWS::IAM::ManagedPolicy")...) {
		p, _ := s.Resolve(s.Resources[id].Properties).(map[string]any)
		if strings.Contains(fmt.Sprint(p["Roles"]), "{"+roleID+"}") {
			g, err := docGrants(id, p["PolicyDocument"])
			if err != nil {
				return nil, err
			}
			grants = append(grants, g...)
		}
	}
	managed, _ := props["ManagedPolicyArns"].([]any)
	for _, arn := range managed {
		g, err := ManagedGrants(fmt.Sprint(arn))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", roleID, err)
		}
		grants = append(grants, g...)
	}
	return grants, nil
}

// ManagedGrants returns what an AWS managed policy allows, from its
// published document.
func ManagedGrants(arn string) ([]Grant, error) {
	var docs map[string]any
	if err := json.Unmarshal(awsManagedJSON, &docs); err != nil {
		return nil, err
	}
	doc, ok := docs[arn]
	if !ok {
		return nil, fmt.Errorf("managed policy %s is not known: add its published document to local/samtemplate/awsmanaged.json", arn)
	}
	return docGrants(arn, doc)
}

// ManagedPolicies lists the AWS managed policies the checks know.
func ManagedPolicies() []string {
	var docs map[string]any
	_ = json.Unmarshal(awsManagedJSON, &docs)
	return slices.Sorted(maps.Keys(docs))
}

func docGrants(name string, doc any) ([]Grant, error) {
	d, _ := doc.(map[string]any)
	stmts, ok := d["Statement"].([]any)
	if !ok {
		stmts = []any{d["Statement"]}
	}
	var grants []Grant
	for _, st := range stmts {
		m, _ := st.(map[string]any)
		for _, k := range []string{"NotAction", "NotResource", "NotPrincipal"} {
			if m[k] != nil {
				return nil, fmt.Errorf("%s: %s is not modelled by the checks", name, k)
			}
		}
		if m["Effect"] != "Allow" {
			return nil, fmt.Errorf("%s: effect %v is not modelled by the checks", name, m["Effect"])
		}
		cond := map[string]map[string][]string{}
		c, _ := m["Condition"].(map[string]any)
		for op, kv := range c {
			cond[op] = map[string][]string{}
			kvs, _ := kv.(map[string]any)
			for k, v := range kvs {
				cond[op][k] = Strings(v)
			}
		}
		for _, a := range Strings(m["Action"]) {
			for _, r := range Strings(m["Resource"]) {
				grants = append(grants, Grant{Policy: name, Action: a, Resource: r, Condition: cond})
			}
		}
	}
	return grants, nil
}

// Strings reads a template value as a list of strings: one string, or a
// list's elements.
func Strings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

// ServiceOf is an action's service prefix: "dynamodb" of dynamodb:GetItem.
func ServiceOf(action string) string {
	svc, _, _ := strings.Cut(action, ":")
	return strings.ToLower(svc)
}

// Actions returns the distinct actions of grants, sorted.
func Actions(grants []Grant) []string {
	seen := map[string]bool{}
	for _, g := range grants {
		seen[g.Action] = true
	}
	return slices.Sorted(maps.Keys(seen))
}
