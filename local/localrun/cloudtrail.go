package localrun

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/cognitofront"
)

// UserDeleted is a successful Cognito call that deleted a user, as the
// user pool's front reports it to UserPoolOptions.OnUserDeleted.
type UserDeleted = cognitofront.UserDeleted

// CloudTrailEvent is the event EventBridge delivers for d, as CloudTrail
// records the call: the user's sub, and never the username or the token.
func CloudTrailEvent(d UserDeleted) []byte {
	params := map[string]any{"userPoolId": d.PoolID, "username": "HIDDEN_DUE_TO_SECURITY_REASONS"}
	identity := map[string]any{"type": "IAMUser", "accountId": AccountID, "principalId": "local"}
	if d.EventName == "DeleteUser" {
		params = map[string]any{"accessToken": "HIDDEN_DUE_TO_SECURITY_REASONS"}
		identity = map[string]any{"type": "Unknown", "principalId": "Anonymous"}
	}
	at := d.Time.UTC().Format(time.RFC3339)
	ev, _ := json.Marshal(map[string]any{
		"version": "0", "id": uuid(), "detail-type": "AWS API Call via CloudTrail", "source": "aws.cognito-idp",
		"account": AccountID, "time": at, "region": Region, "resources": []string{},
		"detail": map[string]any{
			"eventVersion": "1.08", "userIdentity": identity, "eventTime": at,
			"eventSource": "cognito-idp.amazonaws.com", "eventName": d.EventName, "awsRegion": Region,
			"sourceIPAddress": d.SourceIP, "userAgent": d.UserAgent, "requestParameters": params,
			"responseElements": nil, "additionalEventData": map[string]any{"sub": d.Sub},
			"requestID": uuid(), "eventID": uuid(), "readOnly": false, "eventType": "AwsApiCall",
			"managementEvent": true, "recipientAccountId": AccountID, "eventCategory": "Management",
		},
	})
	return ev
}

func uuid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
