package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
)

// TrailsAPI is what the CloudTrail check needs.
type TrailsAPI interface {
	DescribeTrails(ctx context.Context, in *cloudtrail.DescribeTrailsInput, opts ...func(*cloudtrail.Options)) (*cloudtrail.DescribeTrailsOutput, error)
	GetTrailStatus(ctx context.Context, in *cloudtrail.GetTrailStatusInput, opts ...func(*cloudtrail.Options)) (*cloudtrail.GetTrailStatusOutput, error)
	GetEventSelectors(ctx context.Context, in *cloudtrail.GetEventSelectorsInput, opts ...func(*cloudtrail.Options)) (*cloudtrail.GetEventSelectorsOutput, error)
}

// cognitoSource is the event source of the user pool calls.
const cognitoSource = "cognito-idp.amazonaws.com"

// checkTrail wants a trail that logs write management events of Cognito
// in the region: EventBridge sees AdminDeleteUser and DeleteUser only
// where one does, and without them the deprovision function never runs.
func checkTrail(ctx context.Context, api TrailsAPI, region string) (string, error) {
	// Shadow trails are multi-Region trails of other home Regions, which
	// log this Region's events too.
	out, err := api.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{IncludeShadowTrails: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("describing trails: %w", err)
	}
	var why []string
	for _, tr := range out.TrailList {
		name := aws.ToString(tr.Name)
		st, err := api.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: tr.TrailARN})
		if err != nil {
			return "", fmt.Errorf("trail %s: %w", name, err)
		}
		if !aws.ToBool(st.IsLogging) {
			why = append(why, name+" is not logging")
			continue
		}
		sel, err := api.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: tr.TrailARN})
		if err != nil {
			return "", fmt.Errorf("trail %s: %w", name, err)
		}
		if logsCognitoWrites(sel) {
			return fmt.Sprintf("trail %s logs Cognito's write management events in %s: users deleted from the pool are deprovisioned", name, region), nil
		}
		why = append(why, name+" logs no write management event of Cognito")
	}
	if len(why) == 0 {
		why = []string{"there is no trail"}
	}
	return "", fmt.Errorf("no CloudTrail trail logs Cognito's write management events in %s (%s): users deleted from the pool keep their Kandy account until `reconcile --fix gone`; create a trail that logs management events",
		region, strings.Join(why, "; "))
}

// logsCognitoWrites reads a trail's basic or advanced event selectors.
func logsCognitoWrites(o *cloudtrail.GetEventSelectorsOutput) bool {
	for _, s := range o.EventSelectors {
		if aws.ToBool(s.IncludeManagementEvents) && s.ReadWriteType != cttypes.ReadWriteTypeReadOnly &&
			!slices.Contains(s.ExcludeManagementEventSources, cognitoSource) {
			return true
		}
	}
	for _, a := range o.AdvancedEventSelectors {
		if advancedLogsCognitoWrites(a.FieldSelectors) {
			return true
		}
	}
	return false
}

// advancedLogsCognitoWrites: an advanced selector's fields all hold, so it
// must name management events, and none of its fields may leave out a
// write call of cognito-idp.
func advancedLogsCognitoWrites(fields []cttypes.AdvancedFieldSelector) bool {
	management := false
	for _, f := range fields {
		switch aws.ToString(f.Field) {
		case "eventCategory":
			management = slices.Contains(f.Equals, "Management")
		case "readOnly":
			if slices.Contains(f.Equals, "true") && !slices.Contains(f.Equals, "false") || slices.Contains(f.NotEquals, "false") {
				return false
			}
		case "eventSource":
			if len(f.Equals) > 0 && !slices.Contains(f.Equals, cognitoSource) || slices.Contains(f.NotEquals, cognitoSource) {
				return false
			}
		}
	}
	return management
}
