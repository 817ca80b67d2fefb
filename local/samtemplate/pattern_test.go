package samtemplate

import "testing"

func TestMatchEventPattern(t *testing.T) {
	pattern := map[string]any{
		"source": []any{"aws.cognito-idp"},
		"detail": map[string]any{"eventName": []any{"AdminDeleteUser", "DeleteUser"}, "errorCode": []any{map[string]any{"exists": false}}},
	}
	for _, tt := range []struct {
		name string
		ev   map[string]any
		want bool
	}{
		{"a match", map[string]any{"source": "aws.cognito-idp", "detail": map[string]any{"eventName": "DeleteUser"}}, true},
		{"the other value", map[string]any{"source": "aws.cognito-idp", "detail": map[string]any{"eventName": "AdminDeleteUser", "x": 1}}, true},
		{"another source", map[string]any{"source": "aws.s3", "detail": map[string]any{"eventName": "DeleteUser"}}, false},
		{"a field that must not exist", map[string]any{"source": "aws.cognito-idp", "detail": map[string]any{"eventName": "DeleteUser", "errorCode": "AccessDenied"}}, false},
		{"no detail", map[string]any{"source": "aws.cognito-idp"}, false},
		{"detail not an object", map[string]any{"source": "aws.cognito-idp", "detail": "DeleteUser"}, false},
		{"a missing field", map[string]any{"detail": map[string]any{"eventName": "DeleteUser"}}, false},
	} {
		if got := MatchEventPattern(pattern, tt.ev); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if !MatchEventPattern(map[string]any{"a": []any{map[string]any{"exists": true}}}, map[string]any{"a": nil}) {
		t.Error("exists: true does not match a present field")
	}
}
