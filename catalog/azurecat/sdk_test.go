package azurecat

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources/v3"
)

// fakeCredential hands the ARM clients a fixed token; the recording server ignores it.
type fakeCredential struct{}

func (fakeCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "fake", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// armRecorder is a fake ARM that records each request line and answers 200 with an empty
// object, which the SDK's pollers take as a finished operation.
type armRecorder struct {
	mu   sync.Mutex
	reqs []Request
}

func (rec *armRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, Request{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery})
	rec.mu.Unlock()
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusNoContent) // CheckExistence: exists
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{}`))
}

func (rec *armRecorder) first(t *testing.T) Request {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) == 0 {
		t.Fatal("no request recorded")
	}
	r := rec.reqs[0]
	rec.reqs = nil
	return r
}

// TestNameCapturedClientRequests names the requests that azure-sdk-for-go's ARM clients send,
// pointed at a recording server through a custom cloud configuration.
func TestNameCapturedClientRequests(t *testing.T) {
	rec := &armRecorder{}
	srv := httptest.NewTLSServer(rec)
	defer srv.Close()
	opts := &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: srv.URL, Audience: "https://management.azure.com"},
		}},
		Transport: srv.Client(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}}
	const subID = "00000000-0000-0000-0000-000000000001"
	cred := fakeCredential{}
	compute, err := armcompute.NewClientFactory(subID, cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	resources, err := armresources.NewClientFactory(subID, cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	vms := compute.NewVirtualMachinesClient()
	rgPath := "/subscriptions/" + subID + "/resourceGroups/rg1"
	rgSDK := "/subscriptions/" + subID + "/resourcegroups/rg1" // how armresources spells it
	vmID := rgPath + "/providers/Microsoft.Compute/virtualMachines/vm1"
	tests := []struct {
		name     string
		call     func() error
		action   string
		resource string
	}{
		{"vm delete", func() error { _, err := vms.BeginDelete(ctx, "rg1", "vm1", nil); return err },
			"Microsoft.Compute/virtualMachines/delete", vmID},
		{"vm start", func() error { _, err := vms.BeginStart(ctx, "rg1", "vm1", nil); return err },
			"Microsoft.Compute/virtualMachines/start/action", vmID},
		{"vm get", func() error { _, err := vms.Get(ctx, "rg1", "vm1", nil); return err },
			"Microsoft.Compute/virtualMachines/read", vmID},
		{"vm list", func() error { _, err := vms.NewListPager("rg1", nil).NextPage(ctx); return err },
			"Microsoft.Compute/virtualMachines/read", rgPath},
		{"disk grant access", func() error {
			_, err := compute.NewDisksClient().BeginGrantAccess(ctx, "rg1", "d1", armcompute.GrantAccessData{}, nil)
			return err
		}, "Microsoft.Compute/disks/beginGetAccess/action", rgPath + "/providers/Microsoft.Compute/disks/d1"},
		{"scale set vm restart", func() error {
			_, err := compute.NewVirtualMachineScaleSetVMsClient().BeginRestart(ctx, "rg1", "ss", "0", nil)
			return err
		}, "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/restart/action", rgPath + "/providers/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines/0"},
		{"resource group create", func() error {
			loc := "westeurope"
			_, err := resources.NewResourceGroupsClient().CreateOrUpdate(ctx, "rg1", armresources.ResourceGroup{Location: &loc}, nil)
			return err
		}, "Microsoft.Resources/subscriptions/resourceGroups/write", rgSDK},
		{"resource group delete", func() error { _, err := resources.NewResourceGroupsClient().BeginDelete(ctx, "rg1", nil); return err },
			"Microsoft.Resources/subscriptions/resourceGroups/delete", rgSDK},
		{"resource group exists", func() error {
			_, err := resources.NewResourceGroupsClient().CheckExistence(ctx, "rg1", nil)
			return err
		},
			"Microsoft.Resources/subscriptions/resourceGroups/read", rgSDK},
		{"provider register", func() error {
			_, err := resources.NewProvidersClient().Register(ctx, "Microsoft.Compute", nil)
			return err
		},
			"Microsoft.Compute/register/action", "/subscriptions/" + subID},
		{"generic delete by id", func() error {
			_, err := resources.NewClient().BeginDeleteByID(ctx, rgPath+"/providers/Microsoft.Storage/storageAccounts/sa1", "2023-05-01", nil)
			return err
		}, "Microsoft.Storage/storageAccounts/delete", rgPath + "/providers/Microsoft.Storage/storageAccounts/sa1"},
		{"tags at vm scope", func() error {
			_, err := resources.NewTagsClient().BeginCreateOrUpdateAtScope(ctx, vmID, armresources.TagsResource{Properties: &armresources.Tags{}}, nil)
			return err
		}, "Microsoft.Resources/tags/write", vmID + "/providers/Microsoft.Resources/tags/default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatalf("client call: %v", err)
			}
			r := rec.first(t)
			got := Name(r)
			if !got.Known || got.IAMAction != tt.action || got.Resource != tt.resource || got.Account != subID {
				t.Errorf("%s %s\n got %s %q account %q\nwant %s %q", r.Method, r.Path, got.IAMAction, got.Resource, got.Account, tt.action, tt.resource)
			}
		})
	}
}
