package gcpcat

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"google.golang.org/api/compute/v1"
	"google.golang.org/api/option"
	"google.golang.org/api/storage/v1"
)

// recorder is a fake Google API that records each request line and answers an empty object.
type recorder struct {
	mu   sync.Mutex
	reqs []Request
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, Request{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery})
	rec.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{}`))
}

func (rec *recorder) last(t *testing.T) Request {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) == 0 {
		t.Fatal("no request recorded")
	}
	return rec.reqs[len(rec.reqs)-1]
}

// TestNameCapturedClientRequests names the requests that Google's generated Go clients
// (google.golang.org/api; cloud.google.com/go compute and storage are not in go.mod) send.
func TestNameCapturedClientRequests(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	ctx := context.Background()
	opts := func(path string) []option.ClientOption {
		return []option.ClientOption{option.WithEndpoint(srv.URL + path), option.WithoutAuthentication(), option.WithHTTPClient(srv.Client())}
	}
	cs, err := compute.NewService(ctx, opts("/compute/v1/")...)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := storage.NewService(ctx, opts("/storage/v1/")...)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		host     string
		call     func() error
		action   string
		resource string
	}{
		{"compute instances.delete", "compute.googleapis.com", func() error {
			_, err := cs.Instances.Delete("p1", "us-central1-a", "vm-1").Context(ctx).Do()
			return err
		}, "compute.instances.delete", "projects/p1/zones/us-central1-a/instances/vm-1"},
		{"compute instances.insert", "compute.googleapis.com", func() error {
			_, err := cs.Instances.Insert("p1", "us-central1-a", &compute.Instance{Name: "vm-2"}).Context(ctx).Do()
			return err
		}, "compute.instances.insert", "projects/p1/zones/us-central1-a"},
		{"compute instances.list", "compute.googleapis.com", func() error {
			_, err := cs.Instances.List("p1", "us-central1-a").Context(ctx).Do()
			return err
		}, "compute.instances.list", "projects/p1/zones/us-central1-a"},
		{"compute instances.setMetadata", "compute.googleapis.com", func() error {
			_, err := cs.Instances.SetMetadata("p1", "z", "vm-1", &compute.Metadata{}).Context(ctx).Do()
			return err
		}, "compute.instances.setMetadata", "projects/p1/zones/z/instances/vm-1"},
		{"compute firewalls.patch", "compute.googleapis.com", func() error {
			_, err := cs.Firewalls.Patch("p1", "allow-ssh", &compute.Firewall{}).Context(ctx).Do()
			return err
		}, "compute.firewalls.patch", "projects/p1/global/firewalls/allow-ssh"},
		{"compute projects.setIamPolicy-like", "compute.googleapis.com", func() error {
			_, err := cs.Instances.SetIamPolicy("p1", "z", "vm-1", &compute.ZoneSetPolicyRequest{}).Context(ctx).Do()
			return err
		}, "compute.instances.setIamPolicy", "projects/p1/zones/z/instances/vm-1"},
		{"storage objects.get nested name", "storage.googleapis.com", func() error {
			_, err := ss.Objects.Get("bkt", "dir/sub/file.txt").Context(ctx).Do()
			return err
		}, "storage.objects.get", "projects/_/buckets/bkt/objects/dir/sub/file.txt"},
		{"storage objects.delete", "storage.googleapis.com", func() error {
			return ss.Objects.Delete("bkt", "a b/c?d").Context(ctx).Do()
		}, "storage.objects.delete", "projects/_/buckets/bkt/objects/a b/c?d"},
		{"storage objects.insert media upload", "storage.googleapis.com", func() error {
			_, err := ss.Objects.Insert("bkt", &storage.Object{Name: "x/y"}).Media(strings.NewReader("hello")).Context(ctx).Do()
			return err
		}, "storage.objects.insert", "projects/_/buckets/bkt"},
		{"storage buckets.list", "storage.googleapis.com", func() error {
			_, err := ss.Buckets.List("my-proj").Context(ctx).Do()
			return err
		}, "storage.buckets.list", ""},
		{"storage buckets.setIamPolicy", "storage.googleapis.com", func() error {
			_, err := ss.Buckets.SetIamPolicy("bkt", &storage.Policy{}).Context(ctx).Do()
			return err
		}, "storage.buckets.setIamPolicy", "projects/_/buckets/bkt"},
		{"storage objects.rewrite", "storage.googleapis.com", func() error {
			_, err := ss.Objects.Rewrite("src", "a/b", "dst", "c/d", &storage.Object{}).Context(ctx).Do()
			return err
		}, "storage.objects.rewrite", "projects/_/buckets/dst/objects/c/d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatalf("client call: %v", err)
			}
			r := rec.last(t)
			r.Host = tt.host
			got := Name(r)
			if !got.Known || got.IAMAction != tt.action || got.Resource != tt.resource {
				t.Errorf("%s %s?%s\n got %s %q\nwant %s %q", r.Method, r.Path, r.RawQuery, got.IAMAction, got.Resource, tt.action, tt.resource)
			}
		})
	}
}
