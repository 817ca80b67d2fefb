package samtemplate

import (
	"fmt"
	"regexp"
	"strings"
)

// Resolver evaluates CloudFormation's intrinsic functions (Ref, GetAtt,
// Sub, Join, If and the conditions) over one set of values: the checks'
// placeholders for the deployed stack, or the local stack's servers.
type Resolver struct {
	// Value is what a Ref of name (a parameter, a resource or a pseudo
	// parameter), or a GetAtt of name "Resource.Attribute", stands for;
	// ok is false when nothing does.
	Value      func(name string) (v any, ok bool)
	Conditions map[string]any
}

// ErrUnresolved means a Ref or GetAtt named something Value does not know.
type ErrUnresolved struct{ Name string }

func (e ErrUnresolved) Error() string { return "template: nothing stands for " + e.Name }

// Resolve evaluates the intrinsic functions in v. AWS::NoValue, and what
// yields it, is dropped.
func (r Resolver) Resolve(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") || k == "Condition" {
					return r.intrinsic(k, arg)
				}
			}
		}
		out := map[string]any{}
		for k, e := range v {
			res, err := r.Resolve(e)
			if err != nil {
				return nil, err
			}
			if res != nil {
				out[k] = res
			}
		}
		return out, nil
	case []any:
		out := []any{}
		for _, e := range v {
			res, err := r.Resolve(e)
			if err != nil {
				return nil, err
			}
			if res != nil {
				out = append(out, res)
			}
		}
		return out, nil
	default:
		return v, nil
	}
}

func (r Resolver) intrinsic(fn string, arg any) (any, error) {
	args := list(arg)
	switch fn {
	case "Ref":
		return r.ref(fmt.Sprint(arg))
	case "Fn::GetAtt":
		if len(args) == 2 {
			return r.ref(fmt.Sprintf("%v.%v", args[0], args[1]))
		}
	case "Fn::Sub":
		return r.sub(arg)
	case "Fn::If":
		if len(args) == 3 {
			ok, err := r.Condition(fmt.Sprint(args[0]))
			if err != nil {
				return nil, err
			}
			if ok {
				return r.Resolve(args[1])
			}
			return r.Resolve(args[2])
		}
	case "Fn::Join":
		if len(args) == 2 {
			parts, err := r.Resolve(args[1])
			if err != nil {
				return nil, err
			}
			var strs []string
			for _, p := range list(parts) {
				strs = append(strs, fmt.Sprint(p))
			}
			return strings.Join(strs, fmt.Sprint(args[0])), nil
		}
	case "Condition", "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or":
		return r.Holds(map[string]any{fn: arg})
	}
	return map[string]any{fn: arg}, nil // a function the checks need not evaluate
}

// list reads a YAML or JSON list, of strings or of anything.
func list(v any) []any {
	switch l := v.(type) {
	case []any:
		return l
	case []string:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out
	}
	return nil
}

func (r Resolver) ref(name string) (any, error) {
	if name == "AWS::NoValue" {
		return nil, nil
	}
	if v, ok := r.Value(name); ok {
		return v, nil
	}
	return nil, ErrUnresolved{name}
}

var subVar = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

func (r Resolver) sub(arg any) (any, error) {
	text, vars := "", map[string]any{}
	switch a := arg.(type) {
	case string:
		text = a
	case []any:
		if len(a) == 2 {
			text, _ = a[0].(string)
			vars, _ = a[1].(map[string]any)
		}
	}
	var failed error
	out := subVar.ReplaceAllStringFunc(text, func(m string) string {
		name := m[2 : len(m)-1]
		var v any
		var err error
		if given, ok := vars[name]; ok {
			v, err = r.Resolve(given)
		} else {
			v, err = r.ref(name)
		}
		if err != nil && failed == nil {
			failed = err
		}
		return fmt.Sprint(v)
	})
	return strings.ReplaceAll(out, "${!", "${"), failed
}

// Condition evaluates one entry of Conditions.
func (r Resolver) Condition(name string) (bool, error) { return r.Holds(r.Conditions[name]) }

// Holds evaluates a condition: Fn::Equals, Fn::Not, Fn::And, Fn::Or and
// Condition; anything else does not hold.
func (r Resolver) Holds(v any) (bool, error) {
	m, _ := v.(map[string]any)
	for fn, arg := range m {
		args := list(arg)
		switch fn {
		case "Condition":
			return r.Condition(fmt.Sprint(arg))
		case "Fn::Equals":
			if len(args) != 2 {
				return false, nil
			}
			a, err := r.Resolve(args[0])
			if err != nil {
				return false, err
			}
			b, err := r.Resolve(args[1])
			return fmt.Sprint(a) == fmt.Sprint(b), err
		case "Fn::Not":
			if len(args) != 1 {
				return false, nil
			}
			ok, err := r.Holds(args[0])
			return !ok, err
		case "Fn::And", "Fn::Or":
			and := fn == "Fn::And"
			for _, a := range args {
				ok, err := r.Holds(a)
				if err != nil || ok != and {
					return !and, err
				}
			}
			return and, nil
		}
	}
	return false, nil
}
