package samtemplate_test

import (
	"testing"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/local/samtemplate"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/signupretry"
)

// TestTemplateKeepsAnHourBeforeTheDeadLetterQueue computes the retry
// queue's maxReceiveCount from its visibility timeout: the least count
// whose shortest delays add up to an hour.
func TestTemplateKeepsAnHourBeforeTheDeadLetterQueue(t *testing.T) {
	tpl, err := samtemplate.Load(samtemplate.Path())
	if err != nil {
		t.Fatal(err)
	}
	q := tpl.Resources["RetryQueue"].Properties
	visibility, _ := q["VisibilityTimeout"].(int)
	redrive, _ := q["RedrivePolicy"].(map[string]any)
	receives, _ := redrive["maxReceiveCount"].(int)
	if visibility <= 0 {
		t.Fatalf("RetryQueue: VisibilityTimeout %v, want a positive integer", q["VisibilityTimeout"])
	}
	if receives <= 0 {
		t.Fatalf("RetryQueue: maxReceiveCount %v, want a positive integer", redrive["maxReceiveCount"])
	}
	limit := time.Duration(visibility) * time.Second
	if w := signupretry.DefaultBackoff.Window(limit, receives); w < time.Hour {
		t.Errorf("maxReceiveCount %d gives the dead-letter queue a message after %v, want an hour at least", receives, w)
	}
	if want := signupretry.DefaultBackoff.ReceivesFor(time.Hour, limit); receives != want {
		t.Errorf("maxReceiveCount is %d; the least that keeps an hour is %d (window %v)", receives, want, signupretry.DefaultBackoff.Window(limit, want))
	}
}
