package integration

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kandy-provisioner/kandy-provisioner/local/internal/fakecloudtrail"
)

var checkLine = regexp.MustCompile(`^(ok  |FAIL)  (config|secret|kandy|table|kms|trail) +\S`)

// loggingTrail is the organization's usual trail: every Region, every
// management event.
var loggingTrail = fakecloudtrail.Trail{Name: "management", ARN: "arn:aws:cloudtrail:eu-west-1:123456789012:trail/management",
	HomeRegion: "eu-west-1", MultiRegion: true, Logging: true,
	EventSelectors: []map[string]any{{"ReadWriteType": "All", "IncludeManagementEvents": true}}}

// doctorLines runs doctor and checks its shape: one line per check, then
// a count of failures if any.
func doctorLines(t *testing.T, extra map[string]string, args ...string) (int, map[string]string) {
	t.Helper()
	code, out, errOut := cmd(t, extra, append([]string{"doctor"}, args...)...)
	t.Logf("doctor %v:\n%s%s", args, out, errOut)
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasSuffix(l, "check(s) failed") {
			continue
		}
		m := checkLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not a check line: %q\nstdout:\n%s\nstderr:\n%s", l, out, errOut)
		}
		lines[m[2]] = l
	}
	key, secret := stack.sim.ProjectKey()
	for _, s := range []string{key, secret, "DAS0000000000000000"} {
		if strings.Contains(out+errOut, s) {
			t.Fatal("doctor printed a project key or secret")
		}
	}
	return code, lines
}

func TestDoctorPassesOnAGoodDeployment(t *testing.T) {
	code, lines := doctorLines(t, nil)
	if code != 0 {
		t.Errorf("exit %d, want 0; lines %v", code, lines)
	}
	if len(lines) != 6 {
		t.Errorf("%d check lines, want 6: %v", len(lines), lines)
	}
	for name, l := range lines {
		if !strings.HasPrefix(l, "ok") {
			t.Errorf("%s: %s", name, l)
		}
	}
}

func TestDoctorNamesWhatIsWrong(t *testing.T) {
	ctx := context.Background()
	_, err := stack.DB.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("wrong-key"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		extra map[string]string
		args  []string
		fail  map[string]string // check -> text its FAIL line must hold
	}{
		{"no such secret", map[string]string{"KANDY_SECRET_ID": "absent"}, nil,
			map[string]string{"secret": "ResourceNotFoundException", "kandy": "not tried"}},
		{"malformed secret", nil, []string{"--secret-id", "kandy-malformed"},
			map[string]string{"secret": "malformed", "kandy": "not tried"}},
		{"key Kandy refuses", map[string]string{"KANDY_SECRET_ID": "kandy-wrong-key"}, nil,
			map[string]string{"kandy": "invalid project credentials"}},
		{"Kandy unreachable", map[string]string{"KANDY_API_URL": "http://127.0.0.1:1/v1.2"}, nil,
			map[string]string{"kandy": "unavailable"}},
		{"no such table", nil, []string{"--table", "absent"},
			map[string]string{"table": "ResourceNotFoundException"}},
		{"wrong key schema", nil, []string{"--table", "wrong-key"},
			map[string]string{"table": "want [sub S HASH]"}},
		{"no such key", map[string]string{"KMS_KEY_ID": "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000"}, nil,
			map[string]string{"kms": "NotFoundException"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, lines := doctorLines(t, c.extra, c.args...)
			if code != 1 {
				t.Errorf("exit %d", code)
			}
			for check, l := range lines {
				want, failing := c.fail[check]
				switch {
				case failing && (!strings.HasPrefix(l, "FAIL") || !strings.Contains(l, want)):
					t.Errorf("%s: %q, want FAIL with %q", check, l, want)
				case !failing && !strings.HasPrefix(l, "ok"):
					t.Errorf("%s: %q, want ok", check, l)
				}
			}
		})
	}
	code, lines := doctorLines(t, map[string]string{"TABLE_NAME": ""})
	if code != 1 {
		t.Errorf("no table configured: exit %d, want 1; lines %v", code, lines)
	}
	expectContains(t, "no table configured: config line", lines["config"], "TABLE_NAME")
}

// The trail check passes on a trail that logs Cognito's writes in the
// Region, by basic or advanced selectors, and says plainly when none does.
func TestDoctorChecksCloudTrail(t *testing.T) {
	defer stack.trails.Set(loggingTrail)
	arn := "arn:aws:cloudtrail:us-east-1:123456789012:trail/t"
	trail := func(logging bool, basic, advanced []map[string]any) fakecloudtrail.Trail {
		return fakecloudtrail.Trail{Name: "t", ARN: arn, HomeRegion: "us-east-1", Logging: logging, EventSelectors: basic, AdvancedEventSelectors: advanced}
	}
	field := func(name string, equals ...string) map[string]any {
		return map[string]any{"Field": name, "Equals": equals}
	}
	advanced := func(fields ...map[string]any) []map[string]any {
		return []map[string]any{{"Name": "a", "FieldSelectors": fields}}
	}
	for _, c := range []struct {
		name   string
		trails []fakecloudtrail.Trail
		ok     bool
		says   string
	}{
		{"no trail", nil, false, "there is no trail"},
		{"a stopped trail", []fakecloudtrail.Trail{trail(false, []map[string]any{{"ReadWriteType": "All", "IncludeManagementEvents": true}}, nil)}, false, "t is not logging"},
		{"data events only", []fakecloudtrail.Trail{trail(true, []map[string]any{{"ReadWriteType": "All", "IncludeManagementEvents": false}}, nil)}, false, "logs no write management event"},
		{"reads only", []fakecloudtrail.Trail{trail(true, []map[string]any{{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": true}}, nil)}, false, "logs no write management event"},
		{"writes only", []fakecloudtrail.Trail{trail(true, []map[string]any{{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": true}}, nil)}, true, "logs Cognito's write management events"},
		{"advanced: management", []fakecloudtrail.Trail{trail(true, nil, advanced(field("eventCategory", "Management")))}, true, "logs Cognito"},
		{"advanced: management reads", []fakecloudtrail.Trail{trail(true, nil, advanced(field("eventCategory", "Management"), field("readOnly", "true")))}, false, "no write management event"},
		{"advanced: another service", []fakecloudtrail.Trail{trail(true, nil, advanced(field("eventCategory", "Management"), field("eventSource", "s3.amazonaws.com")))}, false, "no write management event"},
		{"advanced: data", []fakecloudtrail.Trail{trail(true, nil, advanced(field("eventCategory", "Data")))}, false, "no write management event"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stack.trails.Set(c.trails...)
			code, lines := doctorLines(t, nil)
			if ok := strings.HasPrefix(lines["trail"], "ok"); ok != c.ok {
				t.Errorf("trail line %q: ok=%v, want ok=%v", lines["trail"], ok, c.ok)
			}
			expectContains(t, "trail line", lines["trail"], c.says)
			if (code == 0) != c.ok {
				t.Fatalf("exit %d", code)
			}
		})
	}
}
