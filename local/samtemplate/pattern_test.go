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
	// $or: one of the patterns must match as well, as the deprovision
	// rule matches AdminDeleteUser in its own pool, or DeleteUser.
	either := map[string]any{"source": []any{"aws.cognito-idp"}, "detail": map[string]any{"$or": []any{
		map[string]any{"eventName": []any{"AdminDeleteUser"}, "requestParameters": map[string]any{"userPoolId": []any{"p1"}}},
		map[string]any{"eventName": []any{"DeleteUser"}},
	}}}
	for _, tt := range []struct {
		name   string
		detail map[string]any
		want   bool
	}{
		{"the first", map[string]any{"eventName": "AdminDeleteUser", "requestParameters": map[string]any{"userPoolId": "p1"}}, true},
		{"the first, another pool", map[string]any{"eventName": "AdminDeleteUser", "requestParameters": map[string]any{"userPoolId": "p2"}}, false},
		{"the second", map[string]any{"eventName": "DeleteUser"}, true},
		{"neither", map[string]any{"eventName": "SignUp"}, false},
	} {
		if got := MatchEventPattern(either, map[string]any{"source": "aws.cognito-idp", "detail": tt.detail}); got != tt.want {
			t.Errorf("$or, %s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if MatchEventPattern(map[string]any{"$or": "not a list"}, map[string]any{}) {
		t.Error("a malformed $or matched")
	}
	if !MatchEventPattern(map[string]any{"a": []any{map[string]any{"exists": true}}}, map[string]any{"a": nil}) {
		t.Error("exists: true does not match a present field")
	}
}
