package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/localrun"
	"github.com/kandy-provisioner/kandy-provisioner/local/processes"
)

// LocalPassword is the password make signup gives every user: local
// only, it meets the template's password policy.
const LocalPassword = "Local-Passw0rd!"

// email is the pool's username for a name: the pool signs users up by
// email address.
func email(name string) (string, error) {
	switch {
	case strings.TrimSpace(name) == "":
		return "", errors.New("a user name is needed (make signup USER=name, make token USER=name, make leave USER=name)")
	case strings.Contains(name, "@"):
		return name, nil
	}
	return name + "@example.com", nil
}

// localCognito is the local pool at AUTH_PORT, and its app client.
func localCognito(ctx context.Context) (c *cip.Client, poolID, clientID string, err error) {
	port, err := envInt("AUTH_PORT", 9229)
	if err != nil {
		return nil, "", "", err
	}
	c = processes.Cognito("http://127.0.0.1:" + strconv.Itoa(port))
	poolID, clientID, err = localrun.FindUserPool(ctx, c)
	return c, poolID, clientID, err
}

// signUp signs name up and confirms it as an administrator would, which
// fires the post-confirmation trigger, and prints the new user.
func signUp(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	user, err := email(name)
	if err != nil {
		return err
	}
	c, poolID, clientID, err := localCognito(ctx)
	if err != nil {
		return err
	}
	out, err := c.SignUp(ctx, &cip.SignUpInput{
		ClientId: aws.String(clientID), Username: aws.String(user), Password: aws.String(LocalPassword),
		UserAttributes: []types.AttributeType{{Name: aws.String("email"), Value: aws.String(user)}},
	})
	var exists *types.UsernameExistsException
	if errors.As(err, &exists) {
		return fmt.Errorf("%s is signed up already", user)
	}
	if err != nil {
		return fmt.Errorf("signing %s up: %w", user, err)
	}
	if _, err := c.AdminConfirmSignUp(ctx, &cip.AdminConfirmSignUpInput{UserPoolId: aws.String(poolID), Username: aws.String(user)}); err != nil {
		return fmt.Errorf("confirming %s: %w", user, err)
	}
	return json.NewEncoder(os.Stdout).Encode(struct {
		Username  string `json:"username"`
		Sub       string `json:"sub"`
		Confirmed bool   `json:"confirmed"`
	}{user, aws.ToString(out.UserSub), true})
}

// token signs name in with USER_PASSWORD_AUTH and prints its access token.
func token(name string) error {
	in, err := signIn(name)
	if err != nil {
		return err
	}
	fmt.Println(in.access)
	return nil
}

// leave deletes name with their own access token (Cognito DeleteUser), as
// a frontend's "delete my sign-in" does: the deprovision function then
// deletes their Kandy account.
func leave(name string) error {
	in, err := signIn(name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := in.client.DeleteUser(ctx, &cip.DeleteUserInput{AccessToken: aws.String(in.access)}); err != nil {
		return fmt.Errorf("deleting %s: %w", in.user, err)
	}
	return json.NewEncoder(os.Stdout).Encode(struct {
		Username string `json:"username"`
		Left     bool   `json:"left"`
	}{in.user, true})
}

// signedIn is a local user signed in, with the pool's client.
type signedIn struct {
	user, access string
	client       *cip.Client
}

// signIn signs name in with USER_PASSWORD_AUTH.
func signIn(name string) (signedIn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	user, err := email(name)
	if err != nil {
		return signedIn{}, err
	}
	c, _, clientID, err := localCognito(ctx)
	if err != nil {
		return signedIn{}, err
	}
	out, err := c.InitiateAuth(ctx, &cip.InitiateAuthInput{
		ClientId: aws.String(clientID), AuthFlow: types.AuthFlowTypeUserPasswordAuth,
		AuthParameters: map[string]string{"USERNAME": user, "PASSWORD": LocalPassword},
	})
	if err != nil {
		return signedIn{}, fmt.Errorf("signing %s in: %w", user, err)
	}
	if out.AuthenticationResult == nil {
		return signedIn{}, fmt.Errorf("signing %s in: the pool asked for a challenge (%s)", user, out.ChallengeName)
	}
	return signedIn{user: user, access: aws.ToString(out.AuthenticationResult.AccessToken), client: c}, nil
}
