// Package samtemplate reads template.yaml, so that the local run and the
// tests build what the template declares instead of a copy of it.
package samtemplate

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"gopkg.in/yaml.v3"

	"github.com/kandy-provisioner/kandy-provisioner/local/internal/reporoot"
)

// Template is a parsed SAM template. Intrinsic short forms (!Ref, !GetAtt,
// !Sub, …) become their long forms: {"Ref": x}, {"Fn::GetAtt": x}, ….
type Template struct {
	Globals    map[string]any
	Conditions map[string]any
	Resources  map[string]Resource
	Outputs    map[string]any
}

// Resource is one entry of Resources.
type Resource struct {
	Type           string
	Condition      string
	Properties     map[string]any
	Metadata       map[string]any
	DeletionPolicy string
}

// Path returns the template.yaml at the repository root.
func Path() string { return filepath.Join(reporoot.Dir(), "template.yaml") }

// Load parses a template file.
func Load(path string) (*Template, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty", path)
	}
	top, ok := value(doc.Content[0]).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: not a mapping", path)
	}
	t := &Template{Resources: map[string]Resource{}}
	t.Globals, _ = top["Globals"].(map[string]any)
	t.Outputs, _ = top["Outputs"].(map[string]any)
	t.Conditions, _ = top["Conditions"].(map[string]any)
	res, _ := top["Resources"].(map[string]any)
	for id, r := range res {
		m, _ := r.(map[string]any)
		rr := Resource{}
		rr.Type, _ = m["Type"].(string)
		rr.Properties, _ = m["Properties"].(map[string]any)
		rr.Metadata, _ = m["Metadata"].(map[string]any)
		rr.DeletionPolicy, _ = m["DeletionPolicy"].(string)
		rr.Condition, _ = m["Condition"].(string)
		t.Resources[id] = rr
	}
	return t, nil
}

// value turns a YAML node into plain Go values.
func value(n *yaml.Node) any {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		return value(n.Content[0])
	case yaml.AliasNode:
		return value(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = value(n.Content[i+1])
		}
		v = m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			s = append(s, value(c))
		}
		v = s
	default:
		if strings.HasPrefix(n.Tag, "!!") {
			var x any
			_ = n.Decode(&x)
			v = x
		} else {
			v = n.Value
		}
	}
	if tag, ok := strings.CutPrefix(n.Tag, "!"); ok && !strings.HasPrefix(tag, "!") {
		name := "Fn::" + tag
		if tag == "Ref" || tag == "Condition" {
			name = tag
		}
		if tag == "GetAtt" {
			if s, ok := v.(string); ok {
				v = strings.SplitN(s, ".", 2)
			}
		}
		return map[string]any{name: v}
	}
	return v
}

// Functions returns the logical ids of the serverless functions, sorted.
func (t *Template) Functions() []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == "AWS::Serverless::Function" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// FunctionDir is the package a function is built from, as the Makefile
// builds it: FooFunction from ./functions/foo.
func FunctionDir(id string) string {
	return "./functions/" + strings.ToLower(strings.TrimSuffix(id, "Function"))
}

// Table returns the logical id of the one DynamoDB table.
func (t *Template) Table() (string, error) {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == "AWS::DynamoDB::Table" {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("template declares %d DynamoDB tables, want 1", len(ids))
	}
	return ids[0], nil
}

// CreateTableInput builds a CreateTable request from the table's definition.
func (t *Template) CreateTableInput(name string) (*dynamodb.CreateTableInput, error) {
	id, err := t.Table()
	if err != nil {
		return nil, err
	}
	p := t.Resources[id].Properties
	in := &dynamodb.CreateTableInput{TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest}
	attrs, _ := p["AttributeDefinitions"].([]any)
	for _, a := range attrs {
		m, _ := a.(map[string]any)
		n, _ := m["AttributeName"].(string)
		ty, _ := m["AttributeType"].(string)
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(n), AttributeType: types.ScalarAttributeType(ty)})
	}
	keys, _ := p["KeySchema"].([]any)
	for _, k := range keys {
		m, _ := k.(map[string]any)
		n, _ := m["AttributeName"].(string)
		ty, _ := m["KeyType"].(string)
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(n), KeyType: types.KeyType(ty)})
	}
	if len(in.KeySchema) == 0 || len(in.AttributeDefinitions) == 0 {
		return nil, errors.New("table has no key schema")
	}
	return in, nil
}

// TimeToLive returns the table's TTL attribute; "" when TTL is off.
func (t *Template) TimeToLive() (string, error) {
	id, err := t.Table()
	if err != nil {
		return "", err
	}
	spec, _ := t.Resources[id].Properties["TimeToLiveSpecification"].(map[string]any)
	if on, _ := spec["Enabled"].(bool); !on {
		return "", nil
	}
	name, _ := spec["AttributeName"].(string)
	return name, nil
}

// HTTPRoutes returns the "METHOD /path" keys of a function's HttpApi events.
func (t *Template) HTTPRoutes(functionID string) []string {
	evs, _ := t.Resources[functionID].Properties["Events"].(map[string]any)
	var routes []string
	for _, e := range evs {
		m, _ := e.(map[string]any)
		p, _ := m["Properties"].(map[string]any)
		if m["Type"] == "HttpApi" {
			routes = append(routes, fmt.Sprintf("%s %s", p["Method"], p["Path"]))
		}
	}
	sort.Strings(routes)
	return routes
}

// FunctionSettings returns a function's timeout in seconds and memory in
// MB: its own, or else the template's Globals.
func (t *Template) FunctionSettings(id string) (timeout, memory int) {
	globals, _ := t.Globals["Function"].(map[string]any)
	props := t.Resources[id].Properties
	get := func(name string, def int) int {
		if v, ok := props[name].(int); ok {
			return v
		}
		if v, ok := globals[name].(int); ok {
			return v
		}
		return def
	}
	// Lambda's own defaults: 3 s and 128 MB.
	return get("Timeout", 3), get("MemorySize", 128)
}

// Variables are a function's environment variables as the template sets
// them: the Globals', then its own over them.
func (t *Template) Variables(id string) map[string]any {
	globals, _ := t.Globals["Function"].(map[string]any)
	vars := map[string]any{}
	for _, props := range []map[string]any{globals, t.Resources[id].Properties} {
		env, _ := props["Environment"].(map[string]any)
		own, _ := env["Variables"].(map[string]any)
		maps.Copy(vars, own)
	}
	return vars
}

// ParameterDefaults returns each template parameter's Default as a string
// (a CommaDelimitedList's stays comma-separated); parameters without one
// are left out.
func ParameterDefaults(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Parameters map[string]struct {
			Default yaml.Node `yaml:"Default"`
		} `yaml:"Parameters"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := map[string]string{}
	for name, p := range doc.Parameters {
		if p.Default.Kind == yaml.ScalarNode {
			out[name] = p.Default.Value
		}
	}
	return out, nil
}

// Deployed reports whether a deploy with these parameter values creates
// resource id: it has no Condition, or its Condition holds. A parameter
// not given is empty.
func (t *Template) Deployed(id string, params map[string]string) bool {
	c := t.Resources[id].Condition
	if c == "" {
		return true
	}
	r := Resolver{Conditions: t.Conditions, Value: func(name string) (any, bool) { return params[name], true }}
	ok, _ := r.Condition(c)
	return ok
}
