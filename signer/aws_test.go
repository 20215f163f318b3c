package signer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/airlockhq/airlock/catalog"
	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/store"
	"github.com/airlockhq/airlock/store/memory"
)

const (
	baseKeyID  = "AKIABASEEXAMPLE00001"
	baseSecret = "base-secret-EXAMPLE-do-not-leak"
)

// fakeSTS answers AssumeRole like STS does, counts the calls and keeps the last form it parsed.
type fakeSTS struct {
	*httptest.Server
	now   func() time.Time
	calls atomic.Int64
	delay time.Duration
	fail  atomic.Bool

	mu       sync.Mutex
	lastForm url.Values
	lastAuth string
	problems []string
}

func newFakeSTS(t *testing.T, now func() time.Time) *fakeSTS {
	t.Helper()
	f := &fakeSTS{now: now}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSTS) serve(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	f.lastForm, f.lastAuth = r.PostForm, r.Header.Get("Authorization")
	if r.Method != http.MethodPost || r.PostForm.Get("Action") != "AssumeRole" || r.PostForm.Get("Version") != "2011-06-15" {
		f.problems = append(f.problems, fmt.Sprintf("unexpected call %s %v", r.Method, r.PostForm))
	}
	f.mu.Unlock()
	if f.fail.Load() {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(403)
		fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to assume role</Message></Error><RequestId>req-1</RequestId></ErrorResponse>`)
		return
	}
	secs := r.PostForm.Get("DurationSeconds")
	d, _ := time.ParseDuration(secs + "s")
	exp := f.now().Add(d).UTC().Format(time.RFC3339)
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleResult><Credentials><AccessKeyId>ASIAMINTED%08d</AccessKeyId><SecretAccessKey>minted-secret-%d</SecretAccessKey><SessionToken>minted-token-%d</SessionToken><Expiration>%s</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/%s</Arn><AssumedRoleId>AROA:%s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult>
<ResponseMetadata><RequestId>req-%d</RequestId></ResponseMetadata></AssumeRoleResponse>`,
		n, n, n, exp, r.PostForm.Get("RoleSessionName"), r.PostForm.Get("RoleSessionName"), n)
}

func (f *fakeSTS) form() (url.Values, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastForm, f.lastAuth
}

func (f *fakeSTS) check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.problems {
		t.Error(p)
	}
}

// awsEnv isolates the AWS SDK from the machine's config and sets the base credentials.
func awsEnv(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_STS", "")
	t.Setenv("TEST_BASE_KEY_ID", baseKeyID)
	t.Setenv("TEST_BASE_SECRET", baseSecret)
}

func awsTarget(stsURL string) *config.Target {
	return &config.Target{
		Name: "prod-aws", Cloud: "aws",
		RoleARN:     "arn:aws:iam::123456789012:role/airlock-prod",
		Regions:     []string{"eu-west-1", "us-east-1"},
		STSEndpoint: stsURL,
		BaseCredentials: &config.AWSCredentials{
			AccessKeyIDEnv: "TEST_BASE_KEY_ID", SecretAccessKeyEnv: "TEST_BASE_SECRET",
		},
		Duration: config.Duration(15 * time.Minute),
	}
}

func newTestAWSBroker(t testing.TB, st store.Store, key []byte, now func() time.Time, mod ...func(*AWSBrokerConfig)) *AWSBroker {
	t.Helper()
	cfg := AWSBrokerConfig{BrokerConfig: BrokerConfig{Store: st, Key: key, Now: now}}
	for _, m := range mod {
		m(&cfg)
	}
	b, err := NewAWSBroker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAWSBrokerConfigChecks(t *testing.T) {
	if _, err := NewAWSBroker(AWSBrokerConfig{BrokerConfig: BrokerConfig{Key: make([]byte, 32)}}); err == nil {
		t.Error("accepted a config without a store")
	}
	if _, err := NewAWSBroker(AWSBrokerConfig{BrokerConfig: BrokerConfig{Store: memory.New(nil)}}); err == nil {
		t.Error("accepted a config without a key")
	}
	cfg := AWSBrokerConfig{BrokerConfig: BrokerConfig{Store: memory.New(nil), Key: make([]byte, 32)}}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	if cfg.RefreshMargin != DefaultRefreshMargin || cfg.CallTimeout != DefaultCallTimeout || cfg.Now == nil || cfg.Logger == nil {
		t.Errorf("defaults not set: %+v", cfg)
	}
}

func TestAWSAssumeRoleRequestShape(t *testing.T) {
	awsEnv(t)
	t.Setenv("TEST_EXTERNAL_ID", "ext-42")
	clock := newFakeClock()
	sts := newFakeSTS(t, clock.Now)
	b := newTestAWSBroker(t, memory.New(clock.Now), testKey(t), clock.Now)
	target := awsTarget(sts.URL)
	target.ExternalIDEnv = "TEST_EXTERNAL_ID"
	policy := SessionPolicy("s3:DeleteObject", "arn:aws:s3:::bucket/key")

	creds, err := b.Credentials(context.Background(), target, MintRequest{SessionName: "Alice Smith <alice@example.com>", Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	sts.check(t)
	form, auth := sts.form()
	want := map[string]string{
		"Action":          "AssumeRole",
		"Version":         "2011-06-15",
		"RoleArn":         target.RoleARN,
		"RoleSessionName": "Alice-Smith--alice@example.com-",
		"DurationSeconds": "900",
		"Policy":          policy,
		"ExternalId":      "ext-42",
	}
	for k, v := range want {
		if got := form.Get(k); got != v {
			t.Errorf("form %s = %q, want %q", k, got, v)
		}
	}
	// Signed with the base credentials, in the target's first region.
	if !strings.Contains(auth, "Credential="+baseKeyID+"/") || !strings.Contains(auth, "/eu-west-1/sts/aws4_request") {
		t.Errorf("STS call not signed with the base key in eu-west-1: %q", auth)
	}
	if creds.AccessKeyID != "ASIAMINTED00000001" || creds.SecretAccessKey != "minted-secret-1" ||
		creds.SessionToken != "minted-token-1" || !creds.CanExpire || !creds.Expires.Equal(clock.Now().Add(15*time.Minute)) {
		t.Errorf("credentials = %+v", creds)
	}

	// Without a policy or external ID, neither is sent.
	target.ExternalIDEnv = ""
	if _, err := b.Credentials(context.Background(), target, MintRequest{SessionName: "bob"}); err != nil {
		t.Fatal(err)
	}
	form, _ = sts.form()
	if _, ok := form["Policy"]; ok {
		t.Error("empty policy was sent")
	}
	if _, ok := form["ExternalId"]; ok {
		t.Error("unset external id was sent")
	}
}

func TestAWSCredentialsCachedUntilRefreshMargin(t *testing.T) {
	awsEnv(t)
	clock := newFakeClock()
	sts := newFakeSTS(t, clock.Now)
	b := newTestAWSBroker(t, memory.New(clock.Now), testKey(t), clock.Now)
	target := awsTarget(sts.URL)
	ctx := context.Background()
	m := MintRequest{SessionName: "alice@example.com", Policy: SessionPolicy("s3:ListAllMyBuckets", "")}

	first, err := b.Credentials(ctx, target, m)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(12 * time.Minute)
	again, err := b.Credentials(ctx, target, m)
	if err != nil {
		t.Fatal(err)
	}
	if again != first || sts.calls.Load() != 1 {
		t.Fatalf("second call within lifetime minted again (calls=%d)", sts.calls.Load())
	}
	// A different policy is a different credential.
	if _, err := b.Credentials(ctx, target, MintRequest{SessionName: m.SessionName, Policy: SessionPolicy("s3:GetObject", "")}); err != nil {
		t.Fatal(err)
	}
	if sts.calls.Load() != 2 {
		t.Fatalf("other policy: calls=%d, want 2", sts.calls.Load())
	}
	// 13 minutes in: inside the 2-minute margin of a 15-minute credential, so a fresh mint.
	clock.Advance(time.Minute)
	fresh, err := b.Credentials(ctx, target, m)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.AccessKeyID == first.AccessKeyID || sts.calls.Load() != 3 {
		t.Fatalf("credential inside the refresh margin was reused (calls=%d)", sts.calls.Load())
	}
	if mints, hits := b.Stats(); mints != 3 || hits != 1 {
		t.Errorf("Stats = %d mints, %d hits; want 3, 1", mints, hits)
	}
}

func TestAWSSessionsPerIdentityOrShared(t *testing.T) {
	awsEnv(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		shared    bool
		wantMints int64
		wantNames []string
	}{
		{"per identity (default)", false, 2, []string{"alice@example.com", "bob@example.com"}},
		{"shared", true, 1, []string{"airlock"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			sts := newFakeSTS(t, clock.Now)
			b := newTestAWSBroker(t, memory.New(clock.Now), testKey(t), clock.Now,
				func(c *AWSBrokerConfig) { c.SharedSessions = tc.shared })
			target := awsTarget(sts.URL)
			var names []string
			for _, who := range []string{"alice@example.com", "bob@example.com"} {
				if _, err := b.Credentials(ctx, target, MintRequest{SessionName: who}); err != nil {
					t.Fatal(err)
				}
				form, _ := sts.form()
				if len(names) == 0 || names[len(names)-1] != form.Get("RoleSessionName") {
					names = append(names, form.Get("RoleSessionName"))
				}
			}
			if sts.calls.Load() != tc.wantMints {
				t.Errorf("STS calls = %d, want %d", sts.calls.Load(), tc.wantMints)
			}
			if strings.Join(names, ",") != strings.Join(tc.wantNames, ",") {
				t.Errorf("session names = %v, want %v", names, tc.wantNames)
			}
		})
	}
}

func TestAWSSingleFlightInProcess(t *testing.T) {
	awsEnv(t)
	sts := newFakeSTS(t, time.Now)
	sts.delay = 50 * time.Millisecond // keep the mint in flight while the burst arrives
	b := newTestAWSBroker(t, memory.New(nil), testKey(t), nil)
	target := awsTarget(sts.URL)
	m := MintRequest{SessionName: "alice@example.com", Policy: SessionPolicy("ec2:DescribeInstances", "")}

	const n = 1000
	var wg sync.WaitGroup
	start := make(chan struct{})
	keys := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			c, err := b.Credentials(context.Background(), target, m)
			keys[i], errs[i] = c.AccessKeyID, err
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || keys[i] != keys[0] {
			t.Fatalf("caller %d: %q, %v (caller 0 got %q)", i, keys[i], errs[i], keys[0])
		}
	}
	if got := sts.calls.Load(); got != 1 {
		t.Fatalf("STS calls = %d, want exactly 1", got)
	}
	if mints, hits := b.Stats(); mints != 1 || hits != n-1 {
		t.Errorf("Stats = %d mints, %d hits; want 1, %d", mints, hits, n-1)
	}
}

func TestAWSSingleFlightAcrossReplicas(t *testing.T) {
	awsEnv(t)
	sts := newFakeSTS(t, time.Now)
	sts.delay = 100 * time.Millisecond
	shared := memory.New(nil) // stands for one Redis behind two replicas
	key := testKey(t)
	replicas := []*AWSBroker{newTestAWSBroker(t, shared, key, nil), newTestAWSBroker(t, shared, key, nil)}
	target := awsTarget(sts.URL)
	m := MintRequest{SessionName: "alice@example.com"}

	const n = 200
	var wg sync.WaitGroup
	start := make(chan struct{})
	var failed atomic.Int64
	keys := sync.Map{}
	for i := range n {
		wg.Go(func() {
			<-start
			c, err := replicas[i%2].Credentials(context.Background(), target, m)
			if err != nil {
				t.Error(err)
				failed.Add(1)
				return
			}
			keys.Store(c.AccessKeyID, true)
		})
	}
	close(start)
	wg.Wait()
	if got := sts.calls.Load(); got != 1 {
		t.Fatalf("STS calls = %d across two replicas, want exactly 1", got)
	}
	count := 0
	keys.Range(func(any, any) bool { count++; return true })
	if count != 1 {
		t.Errorf("replicas handed out %d different credentials", count)
	}
	m0, _ := replicas[0].Stats()
	m1, _ := replicas[1].Stats()
	if m0+m1 != 1 {
		t.Errorf("mints = %d + %d, want 1", m0, m1)
	}
}

func TestAWSLockTakeoverAfterDeadReplica(t *testing.T) {
	awsEnv(t)
	sts := newFakeSTS(t, time.Now)
	st := memory.New(nil)
	b := newTestAWSBroker(t, st, testKey(t), nil)
	target := awsTarget(sts.URL)
	m := MintRequest{SessionName: "alice@example.com"}
	// A replica took the lock and died before writing the cache.
	ck := b.cacheKey(target, SessionName(m.SessionName), m.Policy)
	if ok, err := st.SetNX(context.Background(), lockKey(ck), []byte("dead"), 300*time.Millisecond); !ok || err != nil {
		t.Fatal(ok, err)
	}
	start := time.Now()
	if _, err := b.Credentials(context.Background(), target, m); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("minted after %s, before the dead replica's lock expired", waited)
	}
	if sts.calls.Load() != 1 {
		t.Errorf("STS calls = %d, want 1", sts.calls.Load())
	}
	// Our own lock is released after the mint.
	if _, err := st.Get(context.Background(), lockKey(ck)); err == nil {
		t.Error("mint lock left behind")
	}
}

func TestAWSCallerCancelDoesNotFailOthers(t *testing.T) {
	awsEnv(t)
	sts := newFakeSTS(t, time.Now)
	sts.delay = 200 * time.Millisecond
	b := newTestAWSBroker(t, memory.New(nil), testKey(t), nil)
	target := awsTarget(sts.URL)
	m := MintRequest{SessionName: "alice@example.com"}

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := b.Credentials(ctx, target, m); first <- err }()
	time.Sleep(20 * time.Millisecond) // the first caller now leads the flight
	second := make(chan error, 1)
	go func() { _, err := b.Credentials(context.Background(), target, m); second <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-first; err == nil {
		t.Error("cancelled caller got no error")
	}
	if err := <-second; err != nil {
		t.Errorf("the other caller failed with the leader's cancellation: %v", err)
	}
	if sts.calls.Load() != 1 {
		t.Errorf("STS calls = %d, want 1", sts.calls.Load())
	}
}

func TestAWSMintErrors(t *testing.T) {
	awsEnv(t)
	sts := newFakeSTS(t, time.Now)
	sts.fail.Store(true)
	b := newTestAWSBroker(t, memory.New(nil), testKey(t), nil)
	target := awsTarget(sts.URL)
	_, err := b.Credentials(context.Background(), target, MintRequest{SessionName: "alice"})
	if err == nil {
		t.Fatal("no error from a refusing STS")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "mint aws credentials for target prod-aws: ") || !strings.Contains(msg, "AccessDenied") {
		t.Errorf("error = %q", msg)
	}
	if strings.Contains(msg, baseSecret) {
		t.Errorf("error leaks the base secret: %q", msg)
	}
	// Failures are not cached: the next call tries again and succeeds.
	sts.fail.Store(false)
	before := sts.calls.Load()
	if _, err := b.Credentials(context.Background(), target, MintRequest{SessionName: "alice"}); err != nil {
		t.Fatal(err)
	}
	if sts.calls.Load() != before+1 {
		t.Error("a failed mint was cached")
	}

	// Missing base-credential env var: named, not guessed.
	target.BaseCredentials.SecretAccessKeyEnv = "TEST_UNSET_SECRET_VAR"
	_, err = b.Credentials(context.Background(), target, MintRequest{SessionName: "carol"})
	if err == nil || !strings.Contains(err.Error(), "TEST_UNSET_SECRET_VAR") {
		t.Errorf("missing env var: %v", err)
	}
	if _, err := b.Credentials(context.Background(), &config.Target{Name: "g", Cloud: "gcp"}, MintRequest{}); err == nil {
		t.Error("minted aws credentials for a gcp target")
	}
}

func TestSessionName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"Alice Smith", "Alice-Smith"},
		{"user+tag=x,y_z-1.2", "user+tag=x,y_z-1.2"},
		{"ünïcode/slash:colon", "-n-code-slash-colon"},
		{"", "airlock"},
		{"a", "airlock"},
		{strings.Repeat("x", 100), strings.Repeat("x", 64)},
		{strings.Repeat("é", 100), strings.Repeat("-", 64)},
	} {
		got := SessionName(tc.in)
		if got != tc.want {
			t.Errorf("SessionName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSessionPolicy(t *testing.T) {
	for _, tc := range []struct{ action, resource, wantResource string }{
		{"s3:DeleteObject", "arn:aws:s3:::bucket/key<&>", "arn:aws:s3:::bucket/key<&>"},
		{"ec2:DescribeInstances", "", "*"},
		{"ec2:TerminateInstances", "i-0123456789abcdef0", "*"},
	} {
		p := SessionPolicy(tc.action, tc.resource)
		if p != SessionPolicy(tc.action, tc.resource) {
			t.Fatal("not deterministic")
		}
		var doc struct {
			Version   string
			Statement []struct{ Effect, Action, Resource string }
		}
		if err := json.Unmarshal([]byte(p), &doc); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if doc.Version != "2012-10-17" || len(doc.Statement) != 1 || doc.Statement[0].Effect != "Allow" ||
			doc.Statement[0].Action != tc.action || doc.Statement[0].Resource != tc.wantResource {
			t.Errorf("SessionPolicy(%q, %q) = %s", tc.action, tc.resource, p)
		}
	}
	want := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/k"}]}`
	if got := SessionPolicy("s3:GetObject", "arn:aws:s3:::b/k"); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// A copy is allowed to read its source, which AWS checks apart from the write.
	want = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::dst/k"},` +
		`{"Effect":"Allow","Action":"s3:GetObjectVersion","Resource":"arn:aws:s3:::src/k"}]}`
	also := []catalog.Permission{{Action: "s3:GetObjectVersion", Resource: "arn:aws:s3:::src/k"}}
	if got := SessionPolicy("s3:PutObject", "arn:aws:s3:::dst/k", also...); got != want {
		t.Errorf("copy: got  %s\nwant %s", got, want)
	}
	// iam:PassRole of an instance profile allows any role: IAM checks the role the profile holds.
	run := SessionPolicy("ec2:RunInstances", "", catalog.Permission{Action: "iam:PassRole", Resource: "arn:aws:iam::1:instance-profile/web"},
		catalog.Permission{Action: "iam:PassRole", Resource: "arn:aws:iam::1:role/task"})
	if !strings.Contains(run, `{"Effect":"Allow","Action":"iam:PassRole","Resource":"*"}`) || !strings.Contains(run, `"Resource":"arn:aws:iam::1:role/task"`) {
		t.Errorf("PassRole statements: %s", run)
	}
	// The extra permissions are part of the memo key.
	if SessionPolicy("s3:PutObject", "arn:aws:s3:::dst/k") == want {
		t.Error("a copy's document is served for a plain put")
	}
	on, off := true, false
	if !SessionPolicyEnabled(&config.Target{}) || !SessionPolicyEnabled(&config.Target{SessionPolicy: &on}) ||
		SessionPolicyEnabled(&config.Target{SessionPolicy: &off}) {
		t.Error("SessionPolicyEnabled")
	}
}

func BenchmarkAWSCredentialsCached(b *testing.B) {
	dir := b.TempDir()
	b.Setenv("AWS_CONFIG_FILE", dir+"/config")
	b.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	b.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	b.Setenv("TEST_BASE_KEY_ID", baseKeyID)
	b.Setenv("TEST_BASE_SECRET", baseSecret)
	sts := &fakeSTS{now: time.Now}
	sts.Server = httptest.NewServer(http.HandlerFunc(sts.serve))
	defer sts.Close()
	broker := newTestAWSBroker(b, memory.New(nil), testKey(b), nil)
	target := awsTarget(sts.URL)
	m := MintRequest{SessionName: "alice@example.com", Policy: SessionPolicy("s3:GetObject", "arn:aws:s3:::bucket/key")}
	ctx := context.Background()
	if _, err := broker.Credentials(ctx, target, m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := broker.Credentials(ctx, target, m); err != nil {
			b.Fatal(err)
		}
	}
	if sts.calls.Load() != 1 {
		b.Fatalf("STS calls = %d", sts.calls.Load())
	}
}

func TestAWSCachedCredentialsAndRepeatPoliciesCostNoAllocation(t *testing.T) {
	// The hot path of every allowed call: the session policy for the action and the
	// credentials this process already holds. Allocation counts are deterministic.
	awsEnv(t)
	clock := newFakeClock()
	sts := newFakeSTS(t, clock.Now)
	b := newTestAWSBroker(t, memory.New(clock.Now), testKey(t), clock.Now)
	target := awsTarget(sts.URL)
	ctx := context.Background()
	m := MintRequest{SessionName: "alice@example.com", Policy: SessionPolicy("s3:GetObject", "arn:aws:s3:::b/k")}
	want, err := b.Credentials(ctx, target, m)
	if err != nil {
		t.Fatal(err)
	}
	var got aws.Credentials
	allocs := testing.AllocsPerRun(200, func() {
		m.Policy = SessionPolicy("s3:GetObject", "arn:aws:s3:::b/k")
		got, err = b.Credentials(ctx, target, m)
	})
	if err != nil || got != want {
		t.Fatalf("cached credentials: %+v, %v", got, err)
	}
	if allocs != 0 {
		t.Errorf("a repeat call allocates %.0f times, want 0", allocs)
	}
	if sts.calls.Load() != 1 {
		t.Errorf("STS calls = %d, want 1", sts.calls.Load())
	}
	// Another identity is another session: it is not served bob's credentials from memory.
	other, err := b.Credentials(ctx, target, MintRequest{SessionName: "bob@example.com", Policy: m.Policy})
	if err != nil {
		t.Fatal(err)
	}
	if other.AccessKeyID == want.AccessKeyID || sts.calls.Load() != 2 {
		t.Errorf("bob got alice's credentials (calls=%d)", sts.calls.Load())
	}
}

func TestSessionPolicyMemoIsBounded(t *testing.T) {
	for i := range maxPolicies + 10 {
		SessionPolicy("s3:GetObject", fmt.Sprintf("arn:aws:s3:::b/k%d", i))
	}
	policies.RLock()
	n := len(policies.m)
	policies.RUnlock()
	if n > maxPolicies {
		t.Errorf("memo holds %d documents, bound is %d", n, maxPolicies)
	}
	want := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/k7"}]}`
	if got := SessionPolicy("s3:GetObject", "arn:aws:s3:::b/k7"); got != want {
		t.Errorf("after the memo was cleared: %s", got)
	}
}
