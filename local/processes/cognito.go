package processes

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"

	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
)

// CognitoLocalScript is cognito-local's entry point, installed by `make tools`.
func CognitoLocalScript() string {
	return filepath.Join(RepoRoot(), "tools", "node_modules", "cognito-local", "lib", "bin", "start.js")
}

// cognitoStorePatch makes cognito-local save its stores whole and in
// order (see the file).
func cognitoStorePatch() string {
	return filepath.Join(RepoRoot(), "tools", "cognito-local-store.js")
}

// StartCognitoLocal runs cognito-local as backend b, its pools under
// dir/.cognito (it always uses ./.cognito), and config, if not nil, as
// its .cognito/config.json: Lambda client, trigger functions, token
// settings.
func StartCognitoLocal(b guard.Backend, dir string, config any) (*Process, error) {
	if config != nil {
		raw, err := json.MarshalIndent(config, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Join(dir, ".cognito"), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, ".cognito", "config.json"), raw, 0o600); err != nil {
			return nil, fmt.Errorf("writing cognito-local's configuration: %w", err)
		}
	}
	return startNode("cognito-local", CognitoLocalScript(), dir, b, []string{cognitoStorePatch()})
}

// Cognito returns a Cognito user pools client for a local endpoint.
func Cognito(endpoint string) *cip.Client { return CognitoVia(endpoint, nil) }

// CognitoVia returns a Cognito user pools client for a local endpoint
// that sends its requests with hc (nil: the SDK's own).
func CognitoVia(endpoint string, hc *http.Client) *cip.Client {
	o := cip.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
	if hc != nil {
		o.HTTPClient = hc
	}
	return cip.New(o)
}

// WatchConfirmationCodes calls found with the destination and code of
// every confirmation code a cognito-local pool holds, once each, until ctx
// ends. It reads the pool's store (dir/.cognito/db/<pool>.json), not
// cognito-local's log: its logger stops writing after a burst of
// sign-ups, and the codes with it.
func WatchConfirmationCodes(ctx context.Context, dir, poolID string, found func(destination, code string)) {
	file := filepath.Join(dir, ".cognito", "db", poolID+".json")
	seen := map[string]string{} // username -> code reported
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		for _, u := range pendingCodes(file) {
			if seen[u.username] != u.code {
				seen[u.username] = u.code
				found(u.destination, u.code)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type pendingCode struct{ username, destination, code string }

// pendingCodes reads the users awaiting confirmation; a file caught
// mid-write reads as none, until the next look.
func pendingCodes(file string) []pendingCode {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var db struct {
		Users map[string]struct {
			ConfirmationCode string
			Attributes       []struct{ Name, Value string }
		}
	}
	if json.Unmarshal(raw, &db) != nil {
		return nil
	}
	var out []pendingCode
	for name, u := range db.Users {
		if u.ConfirmationCode == "" {
			continue
		}
		p := pendingCode{username: name, code: u.ConfirmationCode, destination: name}
		for _, a := range u.Attributes {
			if a.Name == "email" || a.Name == "phone_number" && p.destination == name {
				p.destination = a.Value
			}
		}
		out = append(out, p)
	}
	return out
}

// CognitoStore reads a cognito-local's records under Dir, as
// cognitofront.PoolStore: the front answers SRP sign-ins with them.
type CognitoStore struct{ Dir string }

func (s CognitoStore) db(name string, v any) error {
	raw, err := os.ReadFile(filepath.Join(s.Dir, ".cognito", "db", name+".json"))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// Client is an app client's pool and allowed flows.
func (s CognitoStore) Client(clientID string) (string, []string, error) {
	var db struct {
		Clients map[string]struct {
			UserPoolID        string `json:"UserPoolId"`
			ExplicitAuthFlows []string
		}
	}
	if err := s.db("clients", &db); err != nil {
		return "", nil, err
	}
	c, ok := db.Clients[clientID]
	if !ok {
		return "", nil, fmt.Errorf("no app client %s", clientID)
	}
	return c.UserPoolID, c.ExplicitAuthFlows, nil
}

// User finds a user as cognito-local does: by user name, then by sub,
// then by email where the pool signs in with it.
func (s CognitoStore) User(poolID, name string) (username, password string, ok bool) {
	var db struct {
		Options struct{ UsernameAttributes []string }
		Users   map[string]struct {
			Username, Password string
			Attributes         []struct{ Name, Value string }
		}
	}
	if strings.ContainsAny(poolID, `/\.`) || s.db(poolID, &db) != nil {
		return "", "", false
	}
	if u, ok := db.Users[name]; ok {
		return u.Username, u.Password, true
	}
	byEmail := slices.Contains(db.Options.UsernameAttributes, "email")
	for _, u := range db.Users {
		for _, a := range u.Attributes {
			if a.Value == name && (a.Name == "sub" || a.Name == "email" && byEmail) {
				return u.Username, u.Password, true
			}
		}
	}
	return "", "", false
}
