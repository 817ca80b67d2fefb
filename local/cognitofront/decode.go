package cognitofront

import (
	"context"
	"reflect"
	"strings"

	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/go-json-experiment/json"
)

// targetPrefix starts the X-Amz-Target of every Cognito user pools call.
const targetPrefix = "AWSCognitoIdentityProviderService."

// operations are the request shapes of Cognito's user pools API, by
// X-Amz-Target: the input type of each operation of the AWS SDK's
// client, which is Cognito's API model. The front serves these and no
// other target.
var operations = func() map[string]reflect.Type {
	ops := map[string]reflect.Type{}
	client := reflect.TypeFor[*cip.Client]()
	ctx := reflect.TypeFor[context.Context]()
	for i := range client.NumMethod() {
		m := client.Method(i)
		// func (c *Client) Op(ctx, *OpInput, ...func(*Options)) (*OpOutput, error)
		if m.Type.NumIn() != 4 || m.Type.In(1) != ctx || m.Type.In(2).Kind() != reflect.Pointer {
			continue
		}
		if in := m.Type.In(2).Elem(); in.Name() == m.Name+"Input" && in.PkgPath() == client.Elem().PkgPath() {
			ops[targetPrefix+m.Name] = in
		}
	}
	return ops
}()

// strict is how a request body is read: member names match exactly, in
// their case; a name twice, an unknown name and a value of the wrong type
// are each an error. Go's encoding/json would let each through.
var strict = json.JoinOptions(json.RejectUnknownMembers(true), json.MatchCaseInsensitiveNames(false))

// canonical is how a request is written again: only what was read, zero
// members left out, map keys in order. The same input always gives the
// same bytes.
var canonical = json.JoinOptions(json.OmitZeroStructFields(true), json.Deterministic(true))

// decode reads body strictly as the input of the operation target names:
// a pointer to its SDK input type.
func decode(target string, body []byte) (any, error) {
	typ, ok := operations[target]
	if !ok {
		return nil, errUnknownOperation
	}
	in := reflect.New(typ).Interface()
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, in, strict); err != nil {
		return nil, err
	}
	return in, nil
}

// encode writes a decoded input canonically.
func encode(in any) ([]byte, error) { return json.Marshal(in, canonical) }
