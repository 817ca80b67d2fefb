package samtemplate

import (
	"errors"
	"fmt"
	"testing"
)

func TestResolver(t *testing.T) {
	values := map[string]any{"Table": "t1", "Key.Arn": "arn:key", "AWS::StackName": "local", "Mode": "on"}
	r := Resolver{
		Value: func(name string) (any, bool) { v, ok := values[name]; return v, ok },
		Conditions: map[string]any{
			"On":   map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "Mode"}, "on"}},
			"Off":  map[string]any{"Fn::Not": []any{map[string]any{"Condition": "On"}}},
			"Both": map[string]any{"Fn::And": []any{map[string]any{"Condition": "On"}, map[string]any{"Condition": "Off"}}},
			"Any":  map[string]any{"Fn::Or": []any{map[string]any{"Condition": "Off"}, map[string]any{"Condition": "On"}}},
		},
	}
	for _, tt := range []struct {
		in   any
		want string
	}{
		{map[string]any{"Ref": "Table"}, "t1"},
		{map[string]any{"Fn::GetAtt": []string{"Key", "Arn"}}, "arn:key"},
		{map[string]any{"Fn::GetAtt": []any{"Key", "Arn"}}, "arn:key"},
		{map[string]any{"Fn::Sub": "KandyProvisioner/${AWS::StackName}/${Key.Arn}"}, "KandyProvisioner/local/arn:key"},
		{map[string]any{"Fn::Sub": []any{"${X}-${Table}", map[string]any{"X": "x"}}}, "x-t1"},
		{map[string]any{"Fn::Sub": "literal ${!Table}"}, "literal ${Table}"},
		{map[string]any{"Fn::Join": []any{",", []any{"a", map[string]any{"Ref": "Table"}}}}, "a,t1"},
		{map[string]any{"Fn::If": []any{"On", "yes", "no"}}, "yes"},
		{map[string]any{"Fn::If": []any{"Off", "yes", "no"}}, "no"},
		{[]any{"a", map[string]any{"Ref": "AWS::NoValue"}}, "[a]"},
		{map[string]any{"k": map[string]any{"Fn::If": []any{"Off", "x", map[string]any{"Ref": "AWS::NoValue"}}}}, "map[]"},
		{"plain", "plain"},
	} {
		got, err := r.Resolve(tt.in)
		if err != nil || fmt.Sprint(got) != tt.want {
			t.Errorf("Resolve(%v) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for name, want := range map[string]bool{"On": true, "Off": false, "Both": false, "Any": true, "Missing": false} {
		if got, err := r.Condition(name); err != nil || got != want {
			t.Errorf("Condition(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	for _, bad := range []any{map[string]any{"Ref": "Missing"}, map[string]any{"Fn::Sub": "${Missing}"}, map[string]any{"Fn::GetAtt": []string{"Key", "Nope"}}} {
		var unresolved ErrUnresolved
		if _, err := r.Resolve(bad); !errors.As(err, &unresolved) {
			t.Errorf("Resolve(%v) = %v, want ErrUnresolved", bad, err)
		}
	}
}
