package samtemplate_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
)

// child returns the value of key in a mapping node, or nil.
func child(n *yaml.Node, key string) (keyNode, value *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// explained is a comment naming the check and saying why, in a few words.
var explained = `(?m)^#\s*%s\b\W+(\w+\W+){3,}`

// unexplainedIgnores returns, for a template, every check a resource's
// Metadata tells cfn-lint to ignore without a comment beside it (on the
// ignore_checks key or its entry) that names the check and says why; and
// how many ignores it found.
func unexplainedIgnores(raw []byte) (problems []string, ignores int, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, 0, err
	}
	if len(doc.Content) == 0 {
		return nil, 0, fmt.Errorf("empty template")
	}
	_, resources := child(doc.Content[0], "Resources")
	if resources == nil {
		return nil, 0, fmt.Errorf("no Resources")
	}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		id := resources.Content[i].Value
		_, meta := child(resources.Content[i+1], "Metadata")
		_, lint := child(meta, "cfn-lint")
		_, conf := child(lint, "config")
		key, checks := child(conf, "ignore_checks")
		if checks == nil {
			continue
		}
		for _, c := range checks.Content {
			ignores++
			comments := strings.Join([]string{key.HeadComment, key.LineComment, c.HeadComment, c.LineComment}, "\n")
			if !regexp.MustCompile(fmt.Sprintf(explained, regexp.QuoteMeta(c.Value))).MatchString(comments) {
				problems = append(problems, fmt.Sprintf("%s ignores %s without a comment saying why (# %s: …)", id, c.Value, c.Value))
			}
		}
	}
	return problems, ignores, nil
}

// make lint fails on every cfn-lint finding, informational ones included,
// unless the template accepts it with a reason.
func TestEveryIgnoredLintCheckSaysWhy(t *testing.T) {
	raw, err := os.ReadFile(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	problems, ignores, err := unexplainedIgnores(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("template.yaml: %d cfn-lint checks ignored, each with its reason", ignores)
}

func TestUnexplainedIgnoresAreFound(t *testing.T) {
	const tpl = `
Resources:
  Explained:
    Type: AWS::Logs::LogGroup
    Metadata:
      cfn-lint:
        config:
          # I3011: logs expire by their retention, so nothing is lost.
          ignore_checks: [I3011]
  Beside:
    Type: AWS::Logs::LogGroup
    Metadata:
      cfn-lint:
        config:
          ignore_checks:
            - I3011 # I3011: logs expire by their retention anyway.
            - W3005
  Bare:
    Type: AWS::Logs::LogGroup
    Metadata:
      cfn-lint:
        config:
          # because
          ignore_checks: [I3011]
`
	problems, ignores, err := unexplainedIgnores([]byte(tpl))
	if err != nil {
		t.Fatal(err)
	}
	if ignores != 4 {
		t.Errorf("%d ignores, want 4", ignores)
	}
	if len(problems) != 2 {
		t.Fatalf("%d problems, want 2: %q", len(problems), problems)
	}
	for i, want := range []string{"W3005", "Bare ignores I3011"} {
		if !strings.Contains(problems[i], want) {
			t.Errorf("problem %d %q, want one about %q", i, problems[i], want)
		}
	}
}
