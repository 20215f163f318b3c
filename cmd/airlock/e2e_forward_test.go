package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/compute/metadata"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/oauth2/google"

	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/internal/testenv"
)

// Every forward-mode test target has its endpoint override pointing at MinIO: the clients talk
// to https://s3.us-east-1.amazonaws.com through Airlock's interception, and Airlock forwards to
// MinIO. Nothing leaves loopback.
const forwardConfig = e2eConfig + `
forward_proxy:
  enabled: true
  listen: {{FWD}}
  other_hosts: {{OTHER}}
`

const forwardCloudTargets = `
  - name: gcp1
    cloud: gcp
    service_account: deployer@my-project.iam.gserviceaccount.com
    api_endpoint: http://127.0.0.1:1
  - name: az1
    cloud: azure
    tenant_id: 00000000-0000-0000-0000-000000000001
    subscription_id: 00000000-0000-0000-0000-000000000002
    arm_endpoint: http://127.0.0.1:1
`

type forwardE2E struct {
	*e2eEnv
	fwd    string // host:port of the forward proxy
	caFile string
	ca     *serverCA
}

func startForward(t *testing.T, otherHosts string) *forwardE2E {
	t.Helper()
	minio := testenv.StartMinIO(t)
	fwd := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := strings.NewReplacer("{{FWD}}", fwd, "{{OTHER}}", otherHosts).Replace(forwardConfig)
	cfg = strings.Replace(cfg, "\npolicies:", forwardCloudTargets+"policies:", 1)
	e := startAirlock(t, minio, "", cfg)
	for _, tg := range e.cfg.Targets {
		if tg.Cloud == "aws" && tg.Endpoint == "" {
			t.Fatalf("target %s has no endpoint override: a forward-mode test would reach AWS", tg.Name)
		}
	}
	ca, err := fetchCA(context.Background(), e.url)
	if err != nil {
		t.Fatal(err)
	}
	if _, port, _ := net.SplitHostPort(fwd); ca.proxyPort != port {
		t.Errorf("ca.pem advertises forward port %q, want %s", ca.proxyPort, port)
	}
	caFile := filepath.Join(t.TempDir(), "airlock-ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.logs.String(), "forward proxy CA") {
		t.Error("the CA fingerprint is not logged at start")
	}
	return &forwardE2E{e2eEnv: e, fwd: fwd, caFile: caFile, ca: ca}
}

// awsViaProxy runs an aws CLI with only HTTPS_PROXY, AWS_CA_BUNDLE and the credential_process
// profile: no endpoint override anywhere.
func (f *forwardE2E) awsViaProxy(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	airlock, err := airlockBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config")
	profile := fmt.Sprintf("[profile airlock]\nregion = us-east-1\ncredential_process = %s credentials aws --server %s --target local --reason \"JIRA-42 forward\"\n", airlock, f.url)
	if err := os.WriteFile(cfgFile, []byte(profile), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--profile", "airlock"}, args...)...)
	cmd.Env = append(cleanAWSEnv(), "AWS_CONFIG_FILE="+cfgFile, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"),
		"HTTPS_PROXY=http://"+f.fwd, "AWS_CA_BUNDLE="+f.caFile, "AIRLOCK_TOKEN="+f.token, "HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// cleanAWSEnv is the test's environment without anything that could steer an AWS client.
func cleanAWSEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || strings.EqualFold(k, "HTTPS_PROXY") || strings.EqualFold(k, "HTTP_PROXY") ||
			strings.EqualFold(k, "NO_PROXY") || strings.EqualFold(k, "ALL_PROXY") || k == "AIRLOCK_TOKEN" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "AWS_EC2_METADATA_DISABLED=true", "AWS_DEFAULT_REGION=us-east-1", "AWS_MAX_ATTEMPTS=1", "AWS_RETRY_MODE=standard")
}

func TestE2EForwardProxyAWSCLI(t *testing.T) {
	testenv.Integration(t)
	f := startForward(t, "refuse")
	for cliName, cli := range awsCLIs(t) {
		t.Run(cliName, func(t *testing.T) {
			bucket := strings.ReplaceAll(fmt.Sprintf("fwd-%s-%d", cliName, time.Now().UnixNano()%1e6), "_", "-")
			src := filepath.Join(t.TempDir(), "hello.txt")
			if err := os.WriteFile(src, []byte("hello through the forward proxy\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			run := func(args ...string) string {
				t.Helper()
				out, err := f.awsViaProxy(t, cli, args...)
				if err != nil {
					t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				return out
			}
			run("s3", "mb", "s3://"+bucket)
			run("s3", "cp", src, "s3://"+bucket+"/hello.txt")
			if out := run("s3", "ls", "s3://"+bucket); !strings.Contains(out, "hello.txt") {
				t.Errorf("s3 ls does not list the object: %s", out)
			}
			// The object really is in MinIO: read it back through endpoint mode.
			dst := filepath.Join(t.TempDir(), "back.txt")
			if out, err := f.awsCLI(cli, "s3", "cp", "s3://"+bucket+"/hello.txt", dst); err != nil {
				t.Fatalf("read back through endpoint mode: %v\n%s", err, out)
			}
			if b, _ := os.ReadFile(dst); string(b) != "hello through the forward proxy\n" {
				t.Errorf("read back %q", b)
			}
			// Policy applies in forward mode as in endpoint mode.
			out, err := f.awsViaProxy(t, cli, "s3", "rb", "s3://"+bucket)
			if err == nil || !strings.Contains(out, "no-bucket-deletes") {
				t.Errorf("s3 rb through the forward proxy: want the deny rule, got err=%v\n%s", err, out)
			}
		})
	}
	events := f.auditEvents()
	for _, want := range []struct{ kind, action, decision string }{
		{"decision", "s3:CreateBucket", "allow"}, {"forward", "s3:PutObject", "allow"},
		{"decision", "s3:DeleteBucket", "deny"},
	} {
		if !hasEvent(events, want.kind, want.action, want.decision) {
			t.Errorf("audit has no %s event for %s (%s)", want.kind, want.action, want.decision)
		}
	}

	// Not a cloud host: refused with a clear answer.
	status, body := connectThrough(t, f.fwd, "example.internal:443")
	if status != http.StatusForbidden || !strings.Contains(body, "example.internal") {
		t.Errorf("CONNECT example.internal: %d %q", status, body)
	}
}

func TestE2EForwardProxyGoSDK(t *testing.T) {
	testenv.Integration(t)
	f := startForward(t, "refuse")
	creds := f.issueAWS(t)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(f.ca.pem)
	proxyURL, _ := url.Parse("http://" + f.fwd)
	client := s3.New(s3.Options{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken),
		HTTPClient:  &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: roots}}},
	})
	ctx := context.Background()
	bucket := fmt.Sprintf("fwd-sdk-%d", time.Now().UnixNano()%1e6)
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k/v.txt"), Body: strings.NewReader("sdk data")}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	got, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k/v.txt")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(b) != "sdk data" {
		t.Errorf("GetObject: %q", b)
	}
	list, err := client.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatalf("ListBuckets: %v", err)
	}
	found := false
	for _, bk := range list.Buckets {
		found = found || aws.ToString(bk.Name) == bucket
	}
	if !found {
		t.Errorf("ListBuckets does not list %s", bucket)
	}
}

func TestE2EForwardProxyPassthrough(t *testing.T) {
	testenv.Integration(t)
	f := startForward(t, "passthrough")
	site := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "the site itself")
	}))
	defer site.Close()
	roots := x509.NewCertPool()
	roots.AddCert(site.Certificate())
	proxyURL, _ := url.Parse("http://" + f.fwd)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := client.Get(site.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "the site itself" || !bytes.Equal(resp.TLS.PeerCertificates[0].Raw, site.Certificate().Raw) {
		t.Errorf("passthrough: body %q, certificate from %s", b, resp.TLS.PeerCertificates[0].Issuer)
	}
}

func connectThrough(t *testing.T, proxyAddr, host string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", host, host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "CONNECT"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// airlockExec runs the built binary's `airlock exec` and returns its output and exit code.
func (f *forwardE2E) airlockExec(t *testing.T, extraEnv []string, args ...string) (string, int) {
	t.Helper()
	bin, err := airlockBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"exec", "--server", f.url}, args...)...)
	cmd.Env = append(append(cleanAWSEnv(), "AIRLOCK_TOKEN="+f.token, "HOME="+t.TempDir(), "AWS_ACCESS_KEY_ID=AKIASTANDINGKEY", "AZURE_CLIENT_SECRET=standing"), extraEnv...)
	return runForCode(t, cmd)
}

// runForCode runs cmd and returns its combined output and exit code; not starting is fatal.
func runForCode(t *testing.T, cmd *exec.Cmd) (string, int) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func envOf(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestE2EExecAWS(t *testing.T) {
	testenv.Integration(t)
	f := startForward(t, "refuse")

	out, code := f.airlockExec(t, nil, "--target", "local", "--reason", "it's JIRA-7", "--", "sh", "-c", `cat "$AWS_CONFIG_FILE"; grep -c 'BEGIN CERTIFICATE' "$SSL_CERT_FILE"; env`)
	if code != 0 {
		t.Fatalf("exec env: %d\n%s", code, out)
	}
	env := envOf(out)
	for k, want := range map[string]string{"HTTPS_PROXY": "http://" + f.fwd, "AWS_PROFILE": "airlock", "AIRLOCK_TARGET": "local"} {
		if env[k] != want {
			t.Errorf("%s=%q, want %q", k, env[k], want)
		}
	}
	for _, k := range []string{"AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", "NODE_EXTRA_CA_CERTS", "AWS_CONFIG_FILE"} {
		if env[k] == "" {
			t.Errorf("%s is not set", k)
		}
	}
	if _, ok := env["AWS_ACCESS_KEY_ID"]; ok {
		t.Error("a standing AWS_ACCESS_KEY_ID reached the tool")
	}
	if !strings.Contains(out, "credential_process = ") || !strings.Contains(out, `--reason 'it'\''s JIRA-7'`) {
		t.Errorf("AWS config file:\n%s", out)
	}
	if !strings.Contains(env["NO_PROXY"], "127.0.0.1") {
		t.Errorf("NO_PROXY=%q", env["NO_PROXY"])
	}

	// The tool's exit code comes back.
	if _, code := f.airlockExec(t, nil, "--target", "local", "--", "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
	// Endpoint mode.
	out, _ = f.airlockExec(t, nil, "--target", "local", "--mode", "endpoint", "--", "env")
	if env := envOf(out); env["AWS_ENDPOINT_URL"] != f.url || env["HTTPS_PROXY"] != "" {
		t.Errorf("endpoint mode: AWS_ENDPOINT_URL=%q HTTPS_PROXY=%q", env["AWS_ENDPOINT_URL"], env["HTTPS_PROXY"])
	}

	// The real aws CLIs under airlock exec, nothing else configured.
	for cliName, cli := range awsCLIs(t) {
		bucket := strings.ReplaceAll(fmt.Sprintf("exec-%s-%d", cliName, time.Now().UnixNano()%1e6), "_", "-")
		if out, code := f.airlockExec(t, nil, "--target", "local", "--", cli, "s3", "mb", "s3://"+bucket); code != 0 {
			t.Errorf("%s: airlock exec aws s3 mb: %d\n%s", cliName, code, out)
		}
		if out, code := f.airlockExec(t, nil, "--target", "local", "--", cli, "s3", "ls"); code != 0 || !strings.Contains(out, bucket) {
			t.Errorf("%s: airlock exec aws s3 ls: %d\n%s", cliName, code, out)
		}
	}
}

// TestExecHelperProcess is the tool that airlock exec runs in the GCP and Azure tests: it reads
// tokens the way the cloud libraries do and prints what it got.
func TestExecHelperProcess(t *testing.T) {
	mode := os.Getenv("AIRLOCK_EXEC_HELPER")
	if mode == "" {
		t.Skip("helper process for the airlock exec tests")
	}
	ctx := context.Background()
	switch mode {
	case "gcp":
		// The metadata library (what the Google SDKs use on GCE).
		email, err := metadata.NewClient(nil).EmailWithContext(ctx, "default")
		fmt.Printf("email=%s err=%v\n", email, err)
		tok, err := google.ComputeTokenSource("").Token()
		if err != nil {
			fmt.Printf("token error: %v\n", err)
		} else {
			fmt.Printf("token=%s\n", tok.AccessToken)
		}
		// A plain HTTP client without the header is refused, as on GCE.
		resp, err := http.Get("http://" + os.Getenv("GCE_METADATA_HOST") + "/computeMetadata/v1/instance/service-accounts/default/token")
		if err == nil {
			fmt.Printf("without header: %d\n", resp.StatusCode)
			resp.Body.Close()
		}
	case "azure":
		cred, err := azidentity.NewManagedIdentityCredential(nil)
		if err != nil {
			fmt.Printf("credential error: %v\n", err)
			return
		}
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
		if err != nil {
			fmt.Printf("token error: %v\n", err)
		} else {
			fmt.Printf("token=%s\n", tok.Token)
		}
		fmt.Printf("AZURE_CLIENT_SECRET=%q\n", os.Getenv("AZURE_CLIENT_SECRET"))
	}
}

func TestE2EExecGCPAndAzureTokenServers(t *testing.T) {
	testenv.Integration(t)
	f := startForward(t, "refuse")
	for _, tc := range []struct{ target, cloud string }{{"gcp1", "gcp"}, {"az1", "azure"}} {
		t.Run(tc.cloud, func(t *testing.T) {
			out, code := f.airlockExec(t, []string{"AIRLOCK_EXEC_HELPER=" + tc.cloud}, "--target", tc.target, "--",
				os.Args[0], "-test.run=^TestExecHelperProcess$", "-test.v")
			if code != 0 {
				t.Fatalf("exec: %d\n%s", code, out)
			}
			var tok string
			for _, line := range strings.Split(out, "\n") {
				if v, ok := strings.CutPrefix(line, "token="); ok {
					tok = v
				}
			}
			if tok == "" || !f.isIssuedBearer(t, tok) {
				t.Errorf("the tool did not get an Airlock-issued token:\n%s", out)
			}
			switch tc.cloud {
			case "gcp":
				if !strings.Contains(out, "email=airlock-gcp1@airlock.invalid err=<nil>") || !strings.Contains(out, "without header: 403") {
					t.Errorf("metadata emulation:\n%s", out)
				}
			case "azure":
				if !strings.Contains(out, `AZURE_CLIENT_SECRET=""`) {
					t.Errorf("a standing Azure secret reached the tool:\n%s", out)
				}
			}
		})
	}
}

// isIssuedBearer: Airlock's bearer tokens carry its prefix, which no cloud token has.
func (f *forwardE2E) isIssuedBearer(t *testing.T, tok string) bool {
	return strings.HasPrefix(tok, authn.BearerPrefix) && len(tok) > len(authn.BearerPrefix)+16
}
