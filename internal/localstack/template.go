package localstack

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/kandy-provisioner/kandy-provisioner/internal/samtemplate"
)

// Local values of the template's pseudo parameters.
const (
	Region    = "us-east-1"
	AccountID = "000000000000"
	StackName = "local"
)

// FunctionARN is a function's ARN here.
func FunctionARN(id string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", Region, AccountID, id)
}

// refs maps what the template refers to onto this stack: Ref names (a
// resource or a parameter) and GetAtt "Resource.Attribute" pairs.
func (s *Stack) refs(tpl *samtemplate.Template) (map[string]string, error) {
	defaults, err := samtemplate.ParameterDefaults(samtemplate.Path())
	if err != nil {
		return nil, err
	}
	r := map[string]string{
		"AWS::Region": Region, "AWS::AccountId": AccountID, "AWS::StackName": StackName,
		"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
		// The parameters a deploy must or may set, as this stack sets them.
		"KandySecretArn": s.SecretID, "KandyApiUrl": s.KandyURL,
	}
	for name, v := range defaults {
		if _, set := r[name]; !set {
			r[name] = v
		}
	}
	for id, res := range tpl.Resources {
		switch res.Type {
		case "AWS::DynamoDB::Table":
			r[id] = s.Table
		case "AWS::KMS::Key":
			r[id+".Arn"], r[id] = s.KeyARN, s.KeyARN
		case "AWS::Serverless::Function":
			r[id], r[id+".Arn"] = id, FunctionARN(id)
		}
	}
	for id, q := range s.Queues {
		r[id], r[id+".Arn"], r[id+".QueueName"] = q.URL, q.ARN, q.Name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, pool := range s.userPools {
		r[id], r[id+".Arn"] = pool, userPoolARN(pool)
	}
	return r, nil
}

var subVar = regexp.MustCompile(`\$\{([^}!]+)\}`)

// resolve replaces Ref, GetAtt and Sub in v by refs' values.
func resolve(v any, refs map[string]string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if out, ok, err := intrinsic(k, arg, refs); ok {
					return out, err
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := resolve(e, refs)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := resolve(e, refs)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// intrinsic resolves one intrinsic function; ok is false for a plain key.
func intrinsic(name string, arg any, refs map[string]string) (any, bool, error) {
	lookup := func(key string) (any, bool, error) {
		if v, found := refs[key]; found {
			return v, true, nil
		}
		return nil, true, fmt.Errorf("template: nothing local stands for %s", key)
	}
	switch name {
	case "Ref":
		s, _ := arg.(string)
		return lookup(s)
	case "Fn::GetAtt":
		parts, _ := arg.([]string)
		if list, ok := arg.([]any); ok && len(list) == 2 {
			parts = []string{fmt.Sprint(list[0]), fmt.Sprint(list[1])}
		}
		if len(parts) != 2 {
			return nil, true, fmt.Errorf("template: GetAtt %v", arg)
		}
		return lookup(parts[0] + "." + parts[1])
	case "Fn::Sub":
		s, vars, err := subArgs(arg, refs)
		if err != nil {
			return nil, true, err
		}
		var missing []string
		out := subVar.ReplaceAllStringFunc(s, func(m string) string {
			key := subVar.FindStringSubmatch(m)[1]
			v, found := vars[key]
			if !found {
				v, found = refs[key]
			}
			if !found {
				missing = append(missing, key)
			}
			return v
		})
		if len(missing) > 0 {
			return nil, true, fmt.Errorf("template: nothing local stands for %v", missing)
		}
		return out, true, nil
	}
	return nil, false, nil
}

// subArgs reads Sub's two forms: a string, or [string, {name: value}]
// with its values resolved.
func subArgs(arg any, refs map[string]string) (string, map[string]string, error) {
	list, ok := arg.([]any)
	if !ok {
		s, _ := arg.(string)
		return s, nil, nil
	}
	if len(list) == 0 {
		return "", nil, fmt.Errorf("template: Sub %v", arg)
	}
	s, _ := list[0].(string)
	vars := map[string]string{}
	if len(list) == 2 {
		m, _ := list[1].(map[string]any)
		for k, v := range m {
			r, err := resolve(v, refs)
			if err != nil {
				return "", nil, err
			}
			vars[k] = fmt.Sprint(r)
		}
	}
	return s, vars, nil
}

// FunctionEnv is what function id gets here: Env's AWS variables and
// endpoints, and the template's variables for it (Globals', then its
// own) with this stack's values.
func (s *Stack) FunctionEnv(id string) ([]string, error) {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		return nil, err
	}
	refs, err := s.refs(tpl)
	if err != nil {
		return nil, err
	}
	vars := tpl.Variables(id)
	extra := make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		v, err := resolve(vars[k], refs)
		if err != nil {
			return nil, fmt.Errorf("%s's %s: %w", id, k, err)
		}
		extra = append(extra, fmt.Sprintf("%s=%v", k, v))
	}
	// Env's service variables only where the template gives them: a
	// function that needs no key gets no KMS_KEY_ID.
	base := slices.DeleteFunc(s.Env(), func(e string) bool {
		name, _, _ := strings.Cut(e, "=")
		_, declared := vars[name]
		return !declared && !strings.HasPrefix(name, "AWS_")
	})
	return MergeEnv(base, extra...), nil
}
