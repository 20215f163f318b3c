package authn

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/testenv"
)

// TestSigV4AWSCLI signs real calls with the aws CLI (botocore), which canonicalises paths,
// queries and headers its own way, and checks that every one verifies. The server answers
// 200 with an empty body; the CLI's reaction to that does not matter, only the verdicts.
func TestSigV4AWSCLI(t *testing.T) {
	aws := testenv.Binary(t, "aws")
	clock := time.Now // the CLI signs with the real clock
	issuer := newTestIssuer(t, testKey(1), clock)
	v, err := NewSigV4Verifier(SigV4Config{Issuer: issuer, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := issuer.IssueAWS(testIdentity, "prod-aws", "OPS-7 cli test")
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var verdicts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		verdict := "OK"
		if _, err := v.Verify(r); err != nil {
			verdict = err.Error()
		} else if _, err := io.Copy(io.Discard, r.Body); err != nil {
			verdict = "body: " + err.Error()
		}
		path, _, _ := strings.Cut(r.RequestURI, "?") // the query may carry the session token
		mu.Lock()
		verdicts = append(verdicts, r.Method+" "+path+" -> "+verdict)
		mu.Unlock()
	}))
	defer srv.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	if err := os.WriteFile(cfg, []byte("[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n  signature_version = s3v4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	upload := filepath.Join(dir, "upload.txt")
	if err := os.WriteFile(upload, []byte(strings.Repeat("airlock\n", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"AWS_CONFIG_FILE="+cfg, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"),
		"AWS_ACCESS_KEY_ID="+creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+creds.SecretAccessKey,
		"AWS_SESSION_TOKEN="+creds.SessionToken, "AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=")
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		defer func() { t.Logf("aws %s %s: %s", args[0], args[1], time.Since(start).Round(time.Millisecond)) }()
		cmd := exec.CommandContext(ctx, aws, append([]string{"--endpoint-url", srv.URL}, args...)...)
		cmd.Env = env
		out, _ := cmd.CombinedOutput() // the empty answers make some commands fail; verdicts decide
		return string(out)
	}
	run("ec2", "describe-instances", "--instance-ids", "i-0123456789abcdef0")
	run("dynamodb", "list-tables")
	run("sts", "get-caller-identity")
	run("s3api", "put-object", "--bucket", "my-bucket", "--key", "dir/a b+c~(1).txt", "--body", upload)
	run("s3api", "get-object", "--bucket", "my-bucket", "--key", "dir/ünïcode=1.txt", filepath.Join(dir, "out"))
	run("s3api", "list-objects-v2", "--bucket", "my-bucket", "--prefix", "a/b c", "--delimiter", "/")
	presigned := strings.TrimSpace(run("s3", "presign", "s3://my-bucket/dir/presigned key.txt", "--expires-in", "300"))
	if resp, err := http.Get(presigned); err == nil {
		resp.Body.Close()
	} else {
		t.Errorf("GET presigned URL %q: %v", presigned, err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(verdicts) < 7 {
		t.Errorf("only %d requests reached the server", len(verdicts))
	}
	for _, v := range verdicts {
		t.Log(v)
		if !strings.HasSuffix(v, "-> OK") {
			t.Errorf("refused: %s", v)
		}
	}
}
