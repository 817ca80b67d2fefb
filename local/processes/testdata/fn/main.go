// Command fn is a Lambda function for package processes' tests: it sleeps, fails,
// exits or reads its environment, as its event says.
package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	SleepMS int      `json:"sleep_ms"`
	Fail    bool     `json:"fail"`
	Exit    bool     `json:"exit"`
	Env     []string `json:"env"`
}

func handle(_ context.Context, ev event) (map[string]any, error) {
	time.Sleep(time.Duration(ev.SleepMS) * time.Millisecond)
	switch {
	case ev.Exit:
		os.Exit(3)
	case ev.Fail:
		return nil, errors.New("failed as asked")
	}
	env := map[string]string{}
	for _, name := range ev.Env {
		env[name] = os.Getenv(name)
	}
	return map[string]any{"pid": os.Getpid(), "env": env}, nil
}

func main() { lambda.Start(handle) }
