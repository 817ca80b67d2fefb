package localrun

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
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
		case "AWS::Cognito::UserPool":
			// None until started: a stack without Cognito deletes no user.
			r[id], r[id+".Arn"] = "", ""
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

// resolve replaces Ref, GetAtt and Sub in v by refs' values; a name refs
// lacks is an error.
func resolve(v any, refs map[string]string) (any, error) {
	r := samtemplate.Resolver{Value: func(name string) (any, bool) {
		v, ok := refs[name]
		return v, ok
	}}
	out, err := r.Resolve(v)
	var unresolved samtemplate.ErrUnresolved
	if errors.As(err, &unresolved) {
		return nil, fmt.Errorf("template: nothing local stands for %s", unresolved.Name)
	}
	return out, err
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
