package gcpcat

import (
	"reflect"
	"testing"

	"github.com/airlockhq/airlock/catalog"
)

func TestBodyPermissions(t *testing.T) {
	insert := catalog.Action{IAMAction: "compute.instances.insert"}
	template := catalog.Action{IAMAction: "compute.instanceTemplates.insert"}
	actAs := func(emails ...string) []catalog.Permission {
		var p []catalog.Permission
		for _, e := range emails {
			p = append(p, catalog.Permission{Action: "iam.serviceAccounts.actAs", Resource: "projects/-/serviceAccounts/" + e})
		}
		return p
	}
	for _, tc := range []struct {
		name string
		a    catalog.Action
		body string
		want []catalog.Permission
		ok   bool
	}{
		{"json name", insert, `{"serviceAccounts":[{"email":"a@p.iam.gserviceaccount.com","scopes":[]}]}`, actAs("a@p.iam.gserviceaccount.com"), true},
		{"proto name", insert, `{"service_accounts":[{"email":"b@p.iam.gserviceaccount.com"}]}`, actAs("b@p.iam.gserviceaccount.com"), true},
		{"both spellings", insert, `{"serviceAccounts":[],"service_accounts":[{"email":"c@p"}]}`, nil, false},
		{"none", insert, `{"name":"vm"}`, nil, true},
		{"template", template, `{"properties":{"serviceAccounts":[{"email":"d@p"},{"email":"e@p"}]}}`, actAs("d@p", "e@p"), true},
		{"not json", insert, `{"name":`, nil, false},
		{"account without an email", insert, `{"serviceAccounts":[{"scopes":[]}]}`, nil, false},
		{"other method", catalog.Action{IAMAction: "compute.instances.delete"}, `garbage`, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if NeedsBody(tc.a) != (tc.a.IAMAction != "compute.instances.delete") {
				t.Errorf("NeedsBody(%s) wrong", tc.a.IAMAction)
			}
			got, ok := BodyPermissions(tc.a, []byte(tc.body))
			if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("BodyPermissions = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
