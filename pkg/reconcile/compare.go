// Package reconcile compares the three systems that hold a user's account
// (the Cognito user, the record in the table, the Kandy user), classifies
// every difference, and repairs the classes an operator names, through
// the domain's own claims, so a repair never races a live request.
package reconcile

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/kandy-provisioner/kandy-provisioner/pkg/provision"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userid"
	"github.com/kandy-provisioner/kandy-provisioner/pkg/userpool"
)

// Class is a kind of drift; each has one repair. The classes, what they
// mean and how each is repaired are the state machine's
// (provision.Record.Judge).
type Class = provision.Drift

// The classes, in the order they are reported.
const (
	Missing       = provision.DriftMissing
	Gone          = provision.DriftGone
	Orphan        = provision.DriftOrphan
	Stale         = provision.DriftStale
	Broken        = provision.DriftBroken
	DeletedByUser = provision.DeletedByUser
)

// Classes lists every class.
var Classes = provision.Drifts

// CognitoUser is what a reconcile needs of a Cognito user.
type CognitoUser = userpool.User

// KandyUser is what a reconcile needs of a Kandy user.
type KandyUser struct {
	UserID, APIKey string
}

// Sources read the three systems. Compare reads the table first, then
// Kandy, then Cognito: a sign-up during the read then shows, at worst, as
// missing (provisioning is idempotent), and every repair checks again,
// under a claim, that the record is still as it was read.
type Sources struct {
	Records      func(ctx context.Context, fn func(provision.Record) error) error
	KandyUsers   func(ctx context.Context) ([]KandyUser, error)
	CognitoUsers func(ctx context.Context, fn func([]CognitoUser) error) error
}

// Item is one difference. It names subs and user ids, never a credential.
type Item struct {
	Class  Class  `json:"class"`
	Sub    string `json:"sub"`
	UserID string `json:"user_id"`
	Why    string `json:"why"`
	// seen is the record as it was read (no status: none), for the
	// repair's condition; repair is what fixing it does.
	seen   provision.Record
	repair provision.Repair
}

// Report is what a comparison found.
type Report struct {
	CognitoUsers int `json:"cognito_users"`
	Records      int `json:"records"`
	KandyUsers   int `json:"kandy_users"`
	// InAgreement counts the accounts all three systems agree on.
	InAgreement int `json:"in_agreement"`
	// InProgress counts records under a live claim: a request is working
	// on them, so they are not judged.
	InProgress int `json:"in_progress"`
	// Foreign lists Kandy users outside our id scheme: reported, never
	// touched.
	Foreign []string `json:"foreign"`
	Items   []Item   `json:"items"`
}

// Count is the number of items of class c.
func (r Report) Count(c Class) int {
	n := 0
	for _, it := range r.Items {
		if it.Class == c {
			n++
		}
	}
	return n
}

// Drift is the number of items that are drift (see Class.Drift).
func (r Report) Drift() int {
	n := 0
	for _, it := range r.Items {
		if it.Class.IsDrift() {
			n++
		}
	}
	return n
}

// view is one sub as the three systems hold it.
type view struct {
	sub     string
	cognito *CognitoUser
	record  *provision.Record
	kandy   *KandyUser
}

// Compare reads the three systems and classifies every difference, as of now.
func Compare(ctx context.Context, src Sources, now time.Time) (Report, error) {
	var rep Report
	views := map[string]*view{}
	get := func(sub string) *view {
		if views[sub] == nil {
			views[sub] = &view{sub: sub}
		}
		return views[sub]
	}
	err := src.Records(ctx, func(r provision.Record) error {
		rep.Records++
		get(r.Sub).record = &r
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("reading the table: %w", err)
	}
	if err := rep.readKandy(ctx, src, get); err != nil {
		return Report{}, err
	}
	err = src.CognitoUsers(ctx, func(page []CognitoUser) error {
		for _, u := range page {
			rep.CognitoUsers++
			if u.Sub != "" {
				get(u.Sub).cognito = &u
			}
		}
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("listing Cognito users: %w", err)
	}
	for _, v := range views {
		rep.classify(v, now)
	}
	sort.Slice(rep.Items, func(i, j int) bool {
		a, b := rep.Items[i], rep.Items[j]
		return a.Class < b.Class || a.Class == b.Class && a.Sub < b.Sub
	})
	sort.Strings(rep.Foreign)
	return rep, nil
}

func (rep *Report) readKandy(ctx context.Context, src Sources, get func(string) *view) error {
	users, err := src.KandyUsers(ctx)
	if err != nil {
		return fmt.Errorf("listing Kandy users: %w", err)
	}
	for _, u := range users {
		rep.KandyUsers++
		sub, ours := userid.ToSub(u.UserID)
		if !ours {
			rep.Foreign = append(rep.Foreign, u.UserID)
			continue
		}
		get(sub).kandy = &u
	}
	return nil
}

// classify files one sub under the class the state machine gives it, or
// counts it as in agreement or in progress.
func (rep *Report) classify(v *view, now time.Time) {
	it := Item{Sub: v.sub, seen: provision.Record{Sub: v.sub}}
	it.UserID, _ = userid.FromSub(v.sub)
	if v.record != nil {
		it.seen, it.UserID = *v.record, v.record.UserID
	}
	o := provision.Observed{InPool: v.cognito != nil, Confirmed: v.cognito != nil && v.cognito.Confirmed, Kandy: v.kandy != nil}
	o.SameKey = o.Kandy && v.record != nil && v.kandy.APIKey == v.record.UserAPIKey
	j := it.seen.Judge(o, now)
	switch {
	case j.Busy:
		rep.InProgress++
	case j.Drift == "":
		if it.seen.Exists() || o.Kandy {
			rep.InAgreement++
		}
	default:
		it.Class, it.Why, it.repair = j.Drift, j.Why, j.Repair
		rep.Items = append(rep.Items, it)
	}
}
