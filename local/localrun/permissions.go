package localrun

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
)

// cognitoPrincipal is the service cognito-local invokes the functions as:
// its Lambda client signs with an access key of that name (see
// processes.CallerOf).
const cognitoPrincipal = "cognito-idp.amazonaws.com"

// userPoolARN is a local pool's ARN.
func userPoolARN(id string) string {
	return fmt.Sprintf("arn:aws:cognito-idp:%s:%s:userpool/%s", Region, AccountID, id)
}

// lambdaPermission is an AWS::Lambda::Permission of the deployed stack:
// a service that may invoke a function, for one source.
type lambdaPermission struct {
	function, principal string
	// sourceARN is the template's expression, resolved when asked (the
	// user pool starts after the functions); nil allows any source.
	sourceARN any
}

// lambdaPermissions are the permissions of the stack CloudFormation
// deploys with the parameters' defaults: the SAM transform's output, which
// holds those SAM makes for event sources, not our YAML.
var lambdaPermissions = sync.OnceValues(func() ([]lambdaPermission, error) {
	stack, err := samtemplate.Transform(nil)
	if err != nil {
		return nil, err
	}
	return readPermissions(stack)
})

func readPermissions(stack *samtemplate.Transformed) ([]lambdaPermission, error) {
	var out []lambdaPermission
	for _, id := range stack.OfType("AWS::Lambda::Permission") {
		p := stack.Resources[id].Properties
		if p["Action"] != "lambda:InvokeFunction" {
			continue
		}
		fn, principal := functionID(p["FunctionName"]), p["Principal"]
		if fn == "" || principal == nil {
			return nil, fmt.Errorf("%s: want a function of the template and a principal, have %v and %v", id, p["FunctionName"], principal)
		}
		out = append(out, lambdaPermission{function: fn, principal: fmt.Sprint(principal), sourceARN: p["SourceArn"]})
	}
	return out, nil
}

// functionID is the logical id a FunctionName refers to: Ref F or
// GetAtt F.Arn.
func functionID(v any) string {
	m, _ := v.(map[string]any)
	if ref, ok := m["Ref"].(string); ok {
		return ref
	}
	if att, ok := m["Fn::GetAtt"].([]any); ok && len(att) == 2 && att[1] == "Arn" {
		return fmt.Sprint(att[0])
	}
	return ""
}

// permits is Lambda's resource-based policy for an invocation by a
// service: a permission of the function names the service and, if it has
// a SourceArn, the resource the service acts for. Cognito names that
// resource only in its event: the pool's id.
func (s *Stack) permits(tpl *samtemplate.Template, perms []lambdaPermission, fn string, c processes.Caller, event []byte) bool {
	source := c.SourceARN
	if source == "" && c.Principal == cognitoPrincipal {
		var ev struct {
			UserPoolID string `json:"userPoolId"`
		}
		if json.Unmarshal(event, &ev) == nil && ev.UserPoolID != "" {
			source = userPoolARN(ev.UserPoolID)
		}
	}
	refs, err := s.refs(tpl)
	if err != nil {
		return false
	}
	for _, p := range perms {
		if p.function != fn || p.principal != c.Principal {
			continue
		}
		if p.sourceARN == nil {
			return true
		}
		// A source nothing local stands for (an API of another stack) is
		// no source of this one.
		want, err := resolve(p.sourceARN, refs)
		if arn, ok := want.(string); err == nil && ok && source != "" && arnLike(arn, source) {
			return true
		}
	}
	return false
}

// arnLike is IAM's ArnLike: * matches any run of characters, ? one.
func arnLike(pattern, arn string) bool {
	re := strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern))
	return regexp.MustCompile("^" + re + "$").MatchString(arn)
}
