// Package awsenv builds an aws.Config from the environment Lambda gives a
// function, and nothing else.
//
// config.LoadDefaultConfig also reads shared files and links the STS, SSO
// and sign-in clients for credential chains a function never uses; they
// cost about 2 MB of binary and a third of the cold start. This reads
// what Lambda sets (region, the execution role's credentials) and the
// SDK's standard endpoint variables, so that local servers still work.
package awsenv

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// ErrNoCredentials means the environment has no AWS credentials.
var ErrNoCredentials = errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")

// ErrNoRegion means the environment names no region.
var ErrNoRegion = errors.New("AWS_REGION is not set")

// Load reads the region, the credentials and any configured endpoints.
func Load(getenv func(string) string) (aws.Config, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		return aws.Config{}, ErrNoRegion
	}
	id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return aws.Config{}, ErrNoCredentials
	}
	cfg := aws.Config{
		Region: region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
			id, secret, getenv("AWS_SESSION_TOKEN"))),
	}
	if !strings.EqualFold(getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		if u := getenv("AWS_ENDPOINT_URL"); u != "" {
			cfg.BaseEndpoint = aws.String(u)
		}
		cfg.ConfigSources = []any{endpoints(getenv)}
	}
	return cfg, nil
}

// endpoints answers the service clients' question for
// AWS_ENDPOINT_URL_<SERVICE>, named as the SDK names it: the service id,
// upper case, spaces as underscores (AWS_ENDPOINT_URL_SECRETS_MANAGER).
type endpoints func(string) string

func (e endpoints) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	name := "AWS_ENDPOINT_URL_" + strings.ToUpper(strings.ReplaceAll(sdkID, " ", "_"))
	u := e(name)
	return u, u != "", nil
}
