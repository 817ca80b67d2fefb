package processes

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/guard"
)

func TestWatchConfirmationCodesReadsThePoolsStore(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, ".cognito", "db")
	if err := os.MkdirAll(db, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(users string) {
		if err := os.WriteFile(filepath.Join(db, "local_abc.json"), []byte(`{"Options":{},"Users":{`+users+`}}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var got []string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		WatchConfirmationCodes(ctx, dir, "local_abc", func(to, code string) { mu.Lock(); got = append(got, to+" "+code); mu.Unlock() })
		close(done)
	}()
	ada := `"sub-1":{"Username":"sub-1","ConfirmationCode":"%s","Attributes":[{"Name":"sub","Value":"sub-1"},{"Name":"email","Value":"ada@example.com"}]}`
	write(fmt.Sprintf(ada, "111111"))
	time.Sleep(300 * time.Millisecond)
	write(fmt.Sprintf(ada, "111111") + `,"sub-2":{"Username":"sub-2","Attributes":[{"Name":"email","Value":"bo@example.com"}]}`)
	time.Sleep(300 * time.Millisecond)
	write(`{"broken`)
	time.Sleep(300 * time.Millisecond)
	write(fmt.Sprintf(ada, "222222"))
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	if want := []string{"ada@example.com 111111", "ada@example.com 222222"}; !slices.Equal(got, want) {
		t.Fatalf("codes = %q, want %q: each code once, none for a confirmed user", got, want)
	}
}

// Sign-ups and confirmations at once leave cognito-local's store file whole
// and current: each user's code can be read from it in time. Unpatched,
// overlapping saves leave it stale or not JSON.
func TestCognitoLocalStoreSurvivesABurstOfSignUps(t *testing.T) {
	dir, sockets := t.TempDir(), socketDir(t)
	b := guard.NewBackend(sockets, "cognito-local")
	p, err := StartCognitoLocal(b, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx := context.Background()
	c := CognitoVia(b.URL(), b.Client())
	pool, err := c.CreateUserPool(ctx, &cip.CreateUserPoolInput{PoolName: aws.String("burst")})
	if err != nil {
		t.Fatal(err)
	}
	client, err := c.CreateUserPoolClient(ctx, &cip.CreateUserPoolClientInput{UserPoolId: pool.UserPool.Id, ClientName: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	file := filepath.Join(dir, ".cognito", "db", aws.ToString(pool.UserPool.Id)+".json")
	codeOf := func(email string) string {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			for _, u := range pendingCodes(file) {
				if u.destination == email {
					return u.code
				}
			}
		}
		return ""
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := fmt.Sprintf("u%02d@example.com", i)
			if _, err := c.SignUp(ctx, &cip.SignUpInput{ClientId: client.UserPoolClient.ClientId, Username: aws.String(email), Password: aws.String("Burst-passw0rd!"),
				UserAttributes: []types.AttributeType{{Name: aws.String("email"), Value: aws.String(email)}}}); err != nil {
				t.Errorf("SignUp %s: %v", email, err)
				return
			}
			code := codeOf(email)
			if code == "" {
				raw, _ := os.ReadFile(file)
				t.Errorf("no code for %s in the store (%d bytes, valid JSON %v)", email, len(raw), json.Valid(raw))
				return
			}
			if _, err := c.ConfirmSignUp(ctx, &cip.ConfirmSignUpInput{ClientId: client.UserPoolClient.ClientId, Username: aws.String(email), ConfirmationCode: aws.String(code)}); err != nil {
				t.Errorf("ConfirmSignUp %s: %v", email, err)
			}
		}()
	}
	wg.Wait()
}

// socketDir is a folder for backends' sockets, removed with the test:
// t.TempDir's paths are too long for a socket.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := guard.SocketDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
