package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/internal/testenv"
)

const crashConfig = `
listen: {{LISTEN}}
dev:
  bootstrap_token_env: AIRLOCK_E2E_TOKEN
  bootstrap_identity: {subject: alice, email: alice@example.com, groups: [engineers]}
credentials:
  signing_key_env: AIRLOCK_E2E_SIGNING_KEY
targets:
{{LOCAL_TARGET}}
policies:
  - name: reads-flow
    risk: [read]
    decision: allow
  - name: default-deny
    decision: deny
audit:
  file: {{AUDIT}}
`

// TestE2EKill9LosesNoAcknowledgedEvent runs the real binary under a load of calls, kills it
// with SIGKILL mid-load, and checks that every call that got an answer has its decision event
// in the audit file; then a restarted Airlock continues the chain and the file verifies.
func TestE2EKill9LosesNoAcknowledgedEvent(t *testing.T) {
	testenv.Integration(t)
	bin, err := airlockBinary()
	if err != nil {
		t.Fatal(err)
	}
	minio := testenv.StartMinIO(t)
	dir := t.TempDir()
	auditFile := filepath.Join(dir, "audit.jsonl")
	port := testenv.FreePort(t)
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	url := "http://" + listen
	cfg := strings.NewReplacer("{{LISTEN}}", listen, "{{MINIO}}", minio.URL, "{{AUDIT}}", auditFile).Replace(strings.ReplaceAll(crashConfig, "{{LOCAL_TARGET}}", e2eLocalTarget))
	cfgFile := filepath.Join(dir, "airlock.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"AIRLOCK_E2E_TOKEN=" + e2eToken, "MINIO_ACCESS_KEY=" + minio.AccessKey, "MINIO_SECRET_KEY=" + minio.SecretKey,
		"AIRLOCK_E2E_SIGNING_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "AIRLOCK_REDIS_URL=", "AIRLOCK_LISTEN="}
	start := func() *testenv.Process {
		p := testenv.Start(t, env, bin, "serve", "--config", cfgFile)
		testenv.WaitFor(t, "airlock", 20*time.Second, testenv.HTTPReady(url+"/healthz"))
		return p
	}
	proc := start()
	body, err := requestCredentials(context.Background(), url, e2eToken, "aws", "local", "crash test")
	if err != nil {
		t.Fatal(err)
	}
	creds := parseCredentialProcess(t, body)

	// Load: 8 workers send signed ListBuckets until the server dies; answered IDs are kept.
	var mu sync.Mutex
	var answered []string
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				req, _ := http.NewRequest(http.MethodGet, url+"/", nil)
				hash := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
				req.Header.Set("X-Amz-Content-Sha256", hash)
				_ = v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, "s3", "us-east-1", time.Now())
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				resp.Body.Close()
				if id := resp.Header.Get("X-Airlock-Request-Id"); id != "" {
					mu.Lock()
					answered = append(answered, id)
					mu.Unlock()
				}
			}
		}()
	}
	// Kill once a good number of calls were answered.
	testenv.WaitFor(t, "load", 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(answered) < 200 {
			return fmt.Errorf("%d answered", len(answered))
		}
		return nil
	})
	if err := proc.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	decided := map[string]bool{}
	for _, ev := range readAuditFile(t, auditFile) {
		if ev.Kind == audit.KindDecision {
			decided[ev.RequestID] = true
		}
	}
	missing := 0
	for _, id := range answered {
		if !decided[id] {
			missing++
		}
	}
	t.Logf("%d calls answered before kill -9, %d decision events on disk", len(answered), len(decided))
	if missing > 0 {
		t.Fatalf("%d of %d answered calls have no decision event after kill -9", missing, len(answered))
	}

	// Restart on the same file: calls go on and the file's chain verifies across the crash.
	start()
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest(http.MethodGet, url+"/", nil)
		hash := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		req.Header.Set("X-Amz-Content-Sha256", hash)
		_ = v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, "s3", "us-east-1", time.Now())
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("after restart: status %d (credentials signed with the configured key must survive a restart)", resp.StatusCode)
		}
	}
	files, err := audit.FileSet(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := audit.VerifyFiles(audit.ChainFile, files...); err != nil {
		t.Fatalf("audit file does not verify after kill -9 and restart: %v (%+v)", err, res)
	}
}

func parseCredentialProcess(t *testing.T, body []byte) aws.Credentials {
	t.Helper()
	s := string(body)
	get := func(k string) string {
		i := strings.Index(s, `"`+k+`":"`)
		if i < 0 {
			t.Fatalf("credential_process JSON lacks %s", k)
		}
		rest := s[i+len(k)+4:]
		return rest[:strings.Index(rest, `"`)]
	}
	return aws.Credentials{AccessKeyID: get("AccessKeyId"), SecretAccessKey: get("SecretAccessKey"), SessionToken: get("SessionToken")}
}

func readAuditFile(t *testing.T, path string) []audit.Event {
	t.Helper()
	e := &e2eEnv{t: t, auditFile: path}
	return e.auditEvents()
}
