package localrun

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/cognitofront"
	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
)

// UserPoolOptions shape StartUserPool.
type UserPoolOptions struct {
	Port int // cognito-local's; 0 picks a free one
	// LambdaURL is where the pool's triggers invoke their functions: the
	// Invoke API of StartFunctions.
	LambdaURL string
	// Codes, if set, hears each confirmation code the pool "sends".
	Codes func(destination, code string)
	// OnUserDeleted, if set, hears of each user a successful
	// AdminDeleteUser or DeleteUser removes from any pool, with the user's
	// sub, as CloudTrail records the call for EventBridge. It runs once the
	// caller has its answer, in a goroutine of its own; Stop waits for it.
	OnUserDeleted func(ctx context.Context, d UserDeleted)
}

// UserPool is cognito-local with the template's user pool and app client,
// behind a front (see cognitofront) that refuses what Cognito refuses and
// tells of deleted users.
type UserPool struct {
	URL, ID, ClientID string
	Issuer            string // the tokens' iss: URL/ID
	Client            *cip.Client
}

// localAuthFlow is what the local app client allows beyond the
// template's flows: the front signs an SRP sign-in in to cognito-local
// with it, and make token and the tests sign in with it.
const localAuthFlow = "ALLOW_USER_PASSWORD_AUTH"

// StartUserPool runs cognito-local with the template's UserPool and
// UserPoolClient, created from their properties, or found again under
// DataDir; its triggers invoke the template's functions at LambdaURL.
func (s *Stack) StartUserPool(ctx context.Context, o UserPoolOptions) (*UserPool, error) {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		return nil, err
	}
	poolRes, clientRes, err := userPoolResources(tpl)
	if err != nil {
		return nil, err
	}
	refs, err := s.refs(tpl)
	if err != nil {
		return nil, err
	}
	props, err := resolve(tpl.Resources[poolRes].Properties, refs)
	if err != nil {
		return nil, err
	}
	dir := s.dataDir(s.opts, "cognito")
	up, err := s.startCognitoFront(o, dir, props.(map[string]any))
	if err != nil {
		return nil, err
	}
	if up.ID, err = ensurePool(ctx, up.Client, poolRes, props); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.userPools[poolRes] = up.ID
	s.mu.Unlock()
	if o.Codes != nil {
		wctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { processes.WatchConfirmationCodes(wctx, dir, up.ID, o.Codes); close(done) }()
		s.stops = append(s.stops, func() { cancel(); <-done })
	}
	refs[poolRes] = up.ID
	if up.ClientID, err = ensureClient(ctx, up.Client, up.ID, clientRes, tpl.Resources[clientRes].Properties, refs); err != nil {
		return nil, err
	}
	up.Issuer = up.URL + "/" + up.ID
	return up, nil
}

// startCognitoFront runs cognito-local with its pools in dir, on a Unix
// socket that only its front calls, and the front on o.Port, with the
// pool's properties.
func (s *Stack) startCognitoFront(o UserPoolOptions, dir string, props map[string]any) (*UserPool, error) {
	g := s.pages("cognito-local")
	srv, err := guard.Listen(o.Port)
	if err != nil {
		return nil, fmt.Errorf("cognito-local: %w", err)
	}
	config := map[string]any{
		"LambdaClient": map[string]any{
			"endpoint": o.LambdaURL, "region": Region, "maxRetries": 2,
			// The Invoke API knows Cognito by this key (see permits).
			"credentials": map[string]string{"accessKeyId": cognitoPrincipal, "secretAccessKey": "local"},
			// Cognito waits 5 s for a trigger, and tries twice more.
			"httpOptions": map[string]int{"timeout": 5000},
		},
		"TriggerFunctions": triggers(props),
		// The tokens' iss is the front's address, not cognito-local's.
		"TokenConfig": map[string]string{"IssuerDomain": srv.URL},
	}
	b := guard.NewBackend(s.sockets, "cognito-local")
	p, err := processes.StartCognitoLocal(b, dir, config)
	if err != nil {
		srv.Close()
		return nil, err
	}
	s.started(p)
	watch := &cognitofront.Interceptor{Users: processes.CognitoVia(b.URL(), b.Client()), Schema: cognitofront.NewSchema(schema(props)),
		OnUserDeleted: o.OnUserDeleted, Log: s.opts.Log, Pool: processes.CognitoStore{Dir: dir}}
	f := &guard.Front{Guard: g, Backend: b, Wrap: func(proxy http.Handler) http.Handler { watch.Next = proxy; return watch }}
	s.stops = append(s.stops, watch.Wait, srv.Close)
	if err := srv.Serve(g, f.Handler()); err != nil {
		return nil, err
	}
	return &UserPool{URL: srv.URL, Client: processes.Cognito(srv.URL)}, nil
}

// schema is a pool's Schema property.
func schema(props map[string]any) []cognitofront.SchemaAttribute {
	var out []cognitofront.SchemaAttribute
	list, _ := props["Schema"].([]any)
	for _, v := range list {
		m, _ := v.(map[string]any)
		a := cognitofront.SchemaAttribute{Name: fmt.Sprint(m["Name"])}
		if mutable, ok := m["Mutable"].(bool); ok {
			a.Mutable = &mutable
		}
		out = append(out, a)
	}
	return out
}

// userPoolResources are the logical ids of the template's one user pool
// and one app client; cognito-local names them so.
func userPoolResources(tpl *samtemplate.Template) (pool, client string, err error) {
	for id, r := range tpl.Resources {
		switch r.Type {
		case "AWS::Cognito::UserPool":
			if pool != "" {
				return "", "", fmt.Errorf("template declares user pools %s and %s, want one", pool, id)
			}
			pool = id
		case "AWS::Cognito::UserPoolClient":
			if client != "" {
				return "", "", fmt.Errorf("template declares app clients %s and %s, want one", client, id)
			}
			client = id
		}
	}
	if pool == "" || client == "" {
		return "", "", fmt.Errorf("template declares no user pool or no app client")
	}
	return pool, client, nil
}

// triggers maps the pool's LambdaConfig to function names, as
// cognito-local's TriggerFunctions wants them.
func triggers(props map[string]any) map[string]string {
	lc, _ := props["LambdaConfig"].(map[string]any)
	out := map[string]string{}
	for trigger, v := range lc {
		if arn, ok := v.(string); ok {
			out[trigger] = arn[strings.LastIndex(arn, ":")+1:]
		}
	}
	return out
}

// FindUserPool returns the ids of the template's pool and app client in a
// running cognito-local, found by name as StartUserPool made them.
func FindUserPool(ctx context.Context, c *cip.Client) (poolID, clientID string, err error) {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		return "", "", err
	}
	poolRes, clientRes, err := userPoolResources(tpl)
	if err != nil {
		return "", "", err
	}
	if poolID, err = findPool(ctx, c, poolRes); err != nil || poolID == "" {
		return "", "", fmt.Errorf("no user pool %s at the local Cognito (is make run up?): %v", poolRes, err)
	}
	if clientID, err = findClient(ctx, c, poolID, clientRes); err != nil || clientID == "" {
		return "", "", fmt.Errorf("no app client %s in pool %s: %v", clientRes, poolID, err)
	}
	return poolID, clientID, nil
}

func findPool(ctx context.Context, c *cip.Client, name string) (string, error) {
	out, err := c.ListUserPools(ctx, &cip.ListUserPoolsInput{MaxResults: aws.Int32(60)})
	if err != nil {
		return "", err
	}
	for _, p := range out.UserPools {
		if aws.ToString(p.Name) == name {
			return aws.ToString(p.Id), nil
		}
	}
	return "", nil
}

func findClient(ctx context.Context, c *cip.Client, poolID, name string) (string, error) {
	out, err := c.ListUserPoolClients(ctx, &cip.ListUserPoolClientsInput{UserPoolId: aws.String(poolID), MaxResults: aws.Int32(60)})
	if err != nil {
		return "", err
	}
	for _, cl := range out.UserPoolClients {
		if aws.ToString(cl.ClientName) == name {
			return aws.ToString(cl.ClientId), nil
		}
	}
	return "", nil
}

// ensurePool finds the pool, or creates it from the template's
// properties; CloudFormation's names are the API's but for UserPoolName.
func ensurePool(ctx context.Context, c *cip.Client, name string, props any) (string, error) {
	if id, err := findPool(ctx, c, name); err != nil || id != "" {
		return id, err
	}
	var in cip.CreateUserPoolInput
	if err := convert(props, &in); err != nil {
		return "", fmt.Errorf("the template's %s: %w", name, err)
	}
	in.PoolName = aws.String(name)
	out, err := c.CreateUserPool(ctx, &in)
	if err != nil {
		return "", fmt.Errorf("creating user pool %s: %w", name, err)
	}
	return aws.ToString(out.UserPool.Id), nil
}

// ensureClient finds the app client, or creates it from the template's
// properties plus localAuthFlow.
func ensureClient(ctx context.Context, c *cip.Client, poolID, name string, props map[string]any, refs map[string]string) (string, error) {
	if id, err := findClient(ctx, c, poolID, name); err != nil || id != "" {
		return id, err
	}
	resolved, err := resolve(props, refs)
	if err != nil {
		return "", err
	}
	var in cip.CreateUserPoolClientInput
	if err := convert(resolved, &in); err != nil {
		return "", fmt.Errorf("the template's %s: %w", name, err)
	}
	in.UserPoolId, in.ClientName = aws.String(poolID), aws.String(name)
	in.ExplicitAuthFlows = append(in.ExplicitAuthFlows, ciptypes.ExplicitAuthFlowsType(localAuthFlow))
	out, err := c.CreateUserPoolClient(ctx, &in)
	if err != nil {
		return "", fmt.Errorf("creating app client %s: %w", name, err)
	}
	return aws.ToString(out.UserPoolClient.ClientId), nil
}

// convert fills an SDK input from template properties of the same names.
func convert(props any, in any) error {
	raw, err := json.Marshal(props)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, in)
}
