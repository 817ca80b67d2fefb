package samtemplate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Transformed is template.yaml as CloudFormation deploys it: the output of the
// real SAM transform, which the checks read instead of our YAML.
type Transformed struct {
	Parameters map[string]Parameter
	Conditions map[string]any
	Resources  map[string]StackResource
	Outputs    map[string]any
	// Values are the parameter values it was transformed with, defaults
	// filled in.
	Values map[string]string
}

// Parameter is one entry of Parameters.
type Parameter struct {
	Type           string
	Default        any
	AllowedPattern string
}

// StackResource is one CloudFormation resource.
type StackResource struct {
	Type                string
	Properties          map[string]any
	Metadata            map[string]any
	DeletionPolicy      string
	UpdateReplacePolicy string
	Condition           string
}

// ErrNoTranslator means python3 or the SAM translator is missing.
var ErrNoTranslator = errors.New("the SAM translator is not installed: `make tools` installs python3's aws-sam-translator and cfn-lint")

// Transform runs the SAM translator (tools/sam-transform.py) on
// template.yaml with the given parameter values, with the python3 `make
// tools` chose, or else the one on PATH.
func Transform(params map[string]string) (*Transformed, error) {
	root := filepath.Dir(Path())
	py, err := exec.LookPath(filepath.Join(root, ".tools", "bin", "python3"))
	if err != nil {
		if py, err = exec.LookPath("python3"); err != nil {
			return nil, fmt.Errorf("%w (no python3)", ErrNoTranslator)
		}
	}
	args := []string{filepath.Join(root, "tools", "sam-transform.py"), Path()}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		args = append(args, k+"="+params[k])
	}
	cmd := exec.Command(py, args...)
	// The transform makes no AWS call: the caller's AWS settings (a
	// profile this machine lacks) must not change or break it.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "AWS_") })
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		// The script exits 3 when python3 cannot import the translator.
		if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 3 {
			return nil, fmt.Errorf("%w (%s: %s)", ErrNoTranslator, py, strings.TrimSpace(stderr.String()))
		}
		return nil, fmt.Errorf("sam-transform: %v\n%s", err, stderr.String())
	}
	s := &Transformed{}
	if err := json.Unmarshal(out, s); err != nil {
		return nil, fmt.Errorf("sam-transform printed something that is not a template: %w", err)
	}
	s.Values = map[string]string{}
	for name, p := range s.Parameters {
		if d, ok := p.Default.(string); ok {
			s.Values[name] = d
		} else if p.Default != nil {
			s.Values[name] = fmt.Sprint(p.Default)
		}
	}
	for k, v := range params {
		s.Values[k] = v
	}
	return s, nil
}

// OfType returns the logical ids of the resources of one type that the
// stack deploys with its parameter values (their Condition holds), sorted.
func (s *Transformed) OfType(typ string) []string {
	var ids []string
	for id, r := range s.Resources {
		if r.Type == typ && (r.Condition == "" || s.Condition(r.Condition)) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Pseudo are the pseudo parameters' values in the checks.
var Pseudo = map[string]string{
	"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
	"AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "kandy-provisioner",
}

// Resolve evaluates intrinsic functions with the stack's parameter values.
// A resource stands for itself: Ref X is "{X}" and GetAtt X.Arn is
// "{X.Arn}". AWS::NoValue, and what yields it, is dropped.
func (s *Transformed) Resolve(v any) any {
	out, _ := s.resolver().Resolve(v) // every name stands for something
	return out
}

// Condition evaluates one entry of Conditions.
func (s *Transformed) Condition(name string) bool {
	ok, _ := s.resolver().Condition(name)
	return ok
}

func (s *Transformed) resolver() Resolver {
	return Resolver{Conditions: s.Conditions, Value: func(name string) (any, bool) {
		if v, ok := Pseudo[name]; ok {
			return v, true
		}
		if v, ok := s.Values[name]; ok {
			return v, true
		}
		return "{" + name + "}", true
	}}
}
