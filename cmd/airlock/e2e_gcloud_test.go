package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gcstorage "cloud.google.com/go/storage"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/airlockhq/airlock/internal/testenv"
)

// The real gcloud CLI under `airlock exec`, in proxy mode, with nothing else configured: gcloud
// finds its token at the metadata emulation, talks to https://compute.googleapis.com through
// Airlock's forward proxy, and Airlock forwards to the fake Compute API (which accepts only
// tokens the fake IAM Credentials API minted by impersonation). Nothing leaves loopback: the
// forward proxy refuses every host that is not a target's.

const e2eGcloudConfig = e2eCloudConfig + `
forward_proxy:
  enabled: true
  listen: {{FWD}}
  other_hosts: refuse
`

// gcloudExec runs `airlock exec --target TARGET --project p1 -- gcloud ARGS...` with an
// environment that holds no gcloud settings of the machine's, and returns its output and exit
// code.
func (e *e2eEnv) gcloudExec(t *testing.T, gcloud, target string, args ...string) (string, int) {
	t.Helper()
	bin, err := airlockBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"exec", "--server", e.url, "--target", target, "--project", "p1",
		"--reason", "OPS-9 gcloud", "--", gcloud}, args...)...)
	home := t.TempDir()
	cmd.Env = append(gcloudCleanEnv(), "AIRLOCK_TOKEN="+e.token, "HOME="+home, "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true", "CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		// A standing credential the tool must not use: exec unsets it.
		"GOOGLE_APPLICATION_CREDENTIALS="+filepath.Join(home, "standing-key.json"))
	return runForCode(t, cmd)
}

// gcloudCleanEnv is the test's environment without proxies and without anything that could
// steer gcloud or a Google library.
func gcloudCleanEnv() []string {
	var env []string
	for _, kv := range cleanAWSEnv() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "CLOUDSDK_") && !strings.HasPrefix(k, "GOOGLE_") && !strings.HasPrefix(k, "GCE_") {
			env = append(env, kv)
		}
	}
	return env
}

var approvalURL = regexp.MustCompile(`/requests/([A-Za-z0-9_-]+)`)

func TestE2EGcloudThroughAirlock(t *testing.T) {
	gcloud := testenv.Binary(t, "gcloud")
	fwd := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e := startCloudAirlock(t, e2eGcloudConfig, map[string]string{"{{FWD}}": fwd})

	// A read flows.
	out, code := e.gcloudExec(t, gcloud, "prod-gcp", "compute", "instances", "list", "--zones", "us-central1-a", "--format", "value(name,status)")
	if code != 0 || !strings.Contains(out, "vm-1") || !strings.Contains(out, "RUNNING") {
		t.Fatalf("gcloud compute instances list: exit %d\n%s", code, out)
	}

	// A delete is held: gcloud shows the approval page's address and the rule.
	hits := e.gapiHits.Load()
	out, code = e.gcloudExec(t, gcloud, "prod-gcp", "compute", "instances", "delete", "vm-1", "--zone", "us-central1-a", "--quiet")
	m := approvalURL.FindStringSubmatch(out)
	if code == 0 || m == nil || !strings.Contains(out, e.url+"/requests/") || !strings.Contains(out, "vm-deletes-need-approval") {
		t.Fatalf("gcloud compute instances delete must fail with the approval URL: exit %d\n%s", code, out)
	}
	if e.gapiHits.Load() != hits {
		t.Error("the held delete reached the Compute API")
	}
	e.approve(m[1])
	out, code = e.gcloudExec(t, gcloud, "prod-gcp", "compute", "instances", "delete", "vm-1", "--zone", "us-central1-a", "--quiet")
	if code != 0 {
		t.Fatalf("gcloud compute instances delete after approval: exit %d\n%s", code, out)
	}

	// A write no rule allows is denied, readably, and never forwarded.
	hits = e.gapiHits.Load()
	out, code = e.gcloudExec(t, gcloud, "prod-gcp", "compute", "instances", "stop", "vm-1", "--zone", "us-central1-a", "--quiet")
	if code == 0 || !strings.Contains(out, "default-deny") {
		t.Errorf("gcloud compute instances stop must be denied: exit %d\n%s", code, out)
	}
	if e.gapiHits.Load() != hits {
		t.Error("the denied stop reached the Compute API")
	}

	// Endpoint mode, as the README sets gcloud up without airlock exec: an access token file
	// from `airlock credentials gcp` and the API endpoint override.
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "gcp-token")
	if err := os.WriteFile(tokenFile, []byte(e.bearer("gcp", "prod-gcp")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gcloud, "compute", "instances", "list", "--project", "p1", "--zones", "us-central1-a", "--format", "value(name)")
	cmd.Env = append(gcloudCleanEnv(), "HOME="+dir, "CLOUDSDK_CONFIG="+filepath.Join(dir, "gcloud"),
		"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true", "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true",
		"CLOUDSDK_AUTH_ACCESS_TOKEN_FILE="+tokenFile,
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE="+e.url+"/gcp/compute.googleapis.com/compute/v1/")
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "vm-1" {
		t.Errorf("gcloud in endpoint mode: %v\n%s", err, out)
	}

	events := e.awaitEvents(t,
		wantEvent{"decision", "compute.instances.list", "allow"},
		wantEvent{"forward", "compute.instances.list", "allow"},
		wantEvent{"decision", "compute.instances.delete", "hold"},
		wantEvent{"forward", "compute.instances.delete", "allow"},
		wantEvent{"decision", "compute.instances.stop", "deny"})
	execReason := 0
	for _, ev := range events {
		if ev.Kind != "decision" && ev.Kind != "forward" {
			continue
		}
		if ev.Target != "prod-gcp" || ev.Reason == "" || !strings.Contains(ev.UserAgent, "gcloud/") {
			t.Errorf("event without target, reason or gcloud's user agent: %+v", ev)
		}
		if ev.Reason == "OPS-9 gcloud" {
			execReason++
		}
	}
	if execReason == 0 {
		t.Error("no event carries the reason given to airlock exec")
	}
}

const e2eGcloudStorageConfig = e2eGCSConfig + `
forward_proxy:
  enabled: true
  listen: {{FWD}}
  other_hosts: refuse
`

// TestE2EGcloudStorageThroughAirlock: gcloud storage under airlock exec, through the forward
// proxy to fake-gcs-server, a real implementation of the storage JSON API, which hands out
// upload addresses on storage.googleapis.com as Google does, so that they come back through
// Airlock too.
func TestE2EGcloudStorageThroughAirlock(t *testing.T) {
	gcloud := testenv.Binary(t, "gcloud")
	gcs := startFakeGCS(t, "storage.googleapis.com")
	fwd := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e := startCloudAirlock(t, e2eGcloudStorageConfig, map[string]string{"{{FWD}}": fwd, "{{GCS}}": gcs})

	dir := t.TempDir()
	small := filepath.Join(dir, "hello.txt")
	if err := os.WriteFile(small, []byte("hello through airlock\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Large enough for gcloud's resumable upload (its threshold is 8 MiB by default).
	big := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(big, bytes.Repeat([]byte("0123456789abcdef"), 12<<16), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		out, code := e.gcloudExec(t, gcloud, "gcs", append([]string{"storage"}, args...)...)
		if code != 0 {
			t.Fatalf("gcloud storage %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
	run("buckets", "create", "gs://e2e-gcloud")
	run("cp", small, "gs://e2e-gcloud/dir/hello.txt")
	run("cp", big, "gs://e2e-gcloud/dir/big.bin")
	if out := run("ls", "gs://e2e-gcloud/dir/"); !strings.Contains(out, "gs://e2e-gcloud/dir/hello.txt") || !strings.Contains(out, "gs://e2e-gcloud/dir/big.bin") {
		t.Errorf("gcloud storage ls:\n%s", out)
	}
	if out := run("cat", "gs://e2e-gcloud/dir/hello.txt"); !strings.Contains(out, "hello through airlock") {
		t.Errorf("gcloud storage cat:\n%s", out)
	}
	back := filepath.Join(dir, "back.bin")
	run("cp", "gs://e2e-gcloud/dir/big.bin", back)
	if a, b := fileSum(t, big), fileSum(t, back); a != b {
		t.Errorf("the large object came back different: %s, want %s", b, a)
	}
	out, code := e.gcloudExec(t, gcloud, "gcs", "storage", "rm", "gs://e2e-gcloud/dir/hello.txt")
	if code == 0 || !strings.Contains(out, "object-deletes-are-denied") {
		t.Errorf("gcloud storage rm must be denied: exit %d\n%s", code, out)
	}
	if out := run("ls", "gs://e2e-gcloud/dir/"); !strings.Contains(out, "hello.txt") {
		t.Errorf("the denied delete reached the upstream:\n%s", out)
	}
	events := e.awaitEvents(t,
		wantEvent{"decision", "storage.objects.delete", "deny"},
		wantEvent{"forward", "storage.buckets.insert", "allow"},
		wantEvent{"forward", "storage.objects.insert", "allow"},
		wantEvent{"forward", "storage.objects.list", "allow"},
		wantEvent{"forward", "storage.objects.get", "allow"})
	for _, ev := range events {
		// Every call gcloud made has its name: the chunks of the resumable upload
		// (storage.objects.insert) and the media downloads at /download/ (storage.objects.get).
		if ev.Kind == "forward" && strings.HasSuffix(ev.Action, ".Unknown") {
			t.Errorf("gcloud made a call the catalog could not name: %+v", ev)
		}
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// TestE2EGoStorageClientThroughAirlock runs cloud.google.com/go/storage through the forward
// proxy to fake-gcs-server. The client writes through the JSON API but reads objects through
// the XML API (GET storage.googleapis.com/BUCKET/OBJECT), which Airlock names as the JSON
// API's methods, so one policy covers both.
func TestE2EGoStorageClientThroughAirlock(t *testing.T) {
	testenv.Integration(t)
	// fake-gcs-server answers the XML API path-style only on its public host, which is the host
	// Airlock forwards to (its api_endpoint).
	gcs := startFakeGCS(t, "")
	fwd := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e := startCloudAirlock(t, e2eGcloudStorageConfig, map[string]string{"{{FWD}}": fwd, "{{GCS}}": gcs})
	ctx := context.Background()
	ca, err := fetchCA(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	proxyURL, _ := url.Parse("http://" + fwd)
	hc := &http.Client{Transport: &oauth2.Transport{
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: e.bearer("gcp", "gcs")}),
		Base:   &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: roots}},
	}}
	client, err := gcstorage.NewClient(ctx, option.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	bkt := client.Bucket("e2e-go-client")
	if err := bkt.Create(ctx, "p1", nil); err != nil {
		t.Fatalf("bucket create: %v", err)
	}
	w := bkt.Object("dir/a b.txt").NewWriter(ctx)
	if _, err := io.WriteString(w, "hello through airlock\n"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("object write: %v", err)
	}
	r, err := bkt.Object("dir/a b.txt").NewReader(ctx)
	if err != nil {
		t.Fatalf("object read (XML API): %v", err)
	}
	body, _ := io.ReadAll(r)
	r.Close()
	if string(body) != "hello through airlock\n" {
		t.Errorf("read %q", body)
	}
	r, err = bkt.Object("dir/a b.txt").NewRangeReader(ctx, 6, 7)
	if err != nil {
		t.Fatalf("range read (XML API): %v", err)
	}
	body, _ = io.ReadAll(r)
	r.Close()
	if string(body) != "through" {
		t.Errorf("range read %q", body)
	}
	err = bkt.Object("dir/a b.txt").Delete(ctx)
	if err == nil || !strings.Contains(err.Error(), "object-deletes-are-denied") {
		t.Errorf("delete must be denied: %v", err)
	}

	reads := 0
	for deadline := time.Now().Add(5 * time.Second); reads != 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		reads = 0
		for _, ev := range e.awaitEvents(t, wantEvent{"decision", "storage.objects.delete", "deny"}) {
			if ev.Kind == "forward" && strings.HasSuffix(ev.Action, ".Unknown") {
				t.Fatalf("the client made a call the catalog could not name: %+v", ev)
			}
			if ev.Kind == "forward" && ev.Action == "storage.objects.get" && ev.Resource == "projects/_/buckets/e2e-go-client/objects/dir/a b.txt" {
				reads++
			}
		}
	}
	if reads != 2 {
		t.Errorf("audit has %d forwarded reads of the object, want 2 (whole and range)", reads)
	}
}
