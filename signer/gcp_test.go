package signer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/store/memory"
)

const gcpBaseToken = "ya29.base-identity-token"

// fakeIAMCredentials checks generateAccessToken requests the way Google does and answers with
// Google's JSON, or Google's error format when the request is wrong.
type fakeIAMCredentials struct {
	*httptest.Server
	now   func() time.Time
	calls atomic.Int64
	delay time.Duration

	mu   sync.Mutex
	last map[string]any
	path string
}

var (
	gcpNamePath = regexp.MustCompile(`^/v1/projects/-/serviceAccounts/([^/:]+@[^/:]+):generateAccessToken$`)
	gcpDelegate = regexp.MustCompile(`^projects/-/serviceAccounts/[^/]+@[^/]+$`)
	gcpLifetime = regexp.MustCompile(`^([0-9]+)s$`)
)

func newFakeIAMCredentials(t *testing.T, now func() time.Time) *fakeIAMCredentials {
	t.Helper()
	f := &fakeIAMCredentials{now: now}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func googleError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
}

func (f *fakeIAMCredentials) serve(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if r.Header.Get("Authorization") != "Bearer "+gcpBaseToken {
		googleError(w, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
		return
	}
	m := gcpNamePath.FindStringSubmatch(r.URL.Path)
	if r.Method != http.MethodPost || m == nil {
		googleError(w, 404, "NOT_FOUND", "bad resource name "+r.URL.Path)
		return
	}
	var body struct {
		Delegates []string `json:"delegates"`
		Scope     []string `json:"scope"`
		Lifetime  string   `json:"lifetime"`
	}
	raw := map[string]any{}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&raw); err != nil {
		googleError(w, 400, "INVALID_ARGUMENT", "invalid JSON")
		return
	}
	b, _ := json.Marshal(raw)
	_ = json.Unmarshal(b, &body)
	f.mu.Lock()
	f.last, f.path = raw, r.URL.Path
	f.mu.Unlock()
	if len(body.Scope) == 0 {
		googleError(w, 400, "INVALID_ARGUMENT", "Scope required.")
		return
	}
	for _, d := range body.Delegates {
		if !gcpDelegate.MatchString(d) {
			googleError(w, 400, "INVALID_ARGUMENT", "bad delegate "+d)
			return
		}
	}
	lifetime := time.Hour
	if body.Lifetime != "" {
		lm := gcpLifetime.FindStringSubmatch(body.Lifetime)
		if lm == nil {
			googleError(w, 400, "INVALID_ARGUMENT", "Invalid value at 'lifetime'")
			return
		}
		secs, _ := strconv.Atoi(lm[1])
		if secs > 3600 || secs < 1 {
			googleError(w, 400, "INVALID_ARGUMENT", "The lifetime requested is outside the allowed range.")
			return
		}
		lifetime = time.Duration(secs) * time.Second
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"accessToken": fmt.Sprintf("ya29.minted-for-%s-%d", m[1], n),
		"expireTime":  f.now().Add(lifetime).UTC().Format(time.RFC3339),
	})
}

func (f *fakeIAMCredentials) request() (string, map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.path, f.last
}

func gcpTarget(endpoint string) *config.Target {
	return &config.Target{
		Name: "prod-gcp", Cloud: "gcp",
		ServiceAccount: "deployer@my-project.iam.gserviceaccount.com",
		Scopes:         []string{"https://www.googleapis.com/auth/cloud-platform"},
		Duration:       config.Duration(15 * time.Minute),
		IAMEndpoint:    endpoint,
	}
}

func newTestGCPBroker(t testing.TB, st *memory.Store, key []byte, now func() time.Time, token string) *GCPBroker {
	t.Helper()
	b, err := NewGCPBroker(GCPBrokerConfig{BrokerConfig: BrokerConfig{Store: st, Key: key, Now: now},
		ClientOptions: []option.ClientOption{option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestGCPGenerateAccessTokenRequest(t *testing.T) {
	clock := newFakeClock()
	iam := newFakeIAMCredentials(t, clock.Now)
	b := newTestGCPBroker(t, memory.New(clock.Now), testKey(t), clock.Now, gcpBaseToken)
	target := gcpTarget(iam.URL)
	target.Delegates = []string{"hop@my-project.iam.gserviceaccount.com"}

	tok, exp, err := b.Token(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "ya29.minted-for-deployer@my-project.iam.gserviceaccount.com-1" || !exp.Equal(clock.Now().Add(15*time.Minute)) {
		t.Errorf("Token = %q, %v", tok, exp)
	}
	path, body := iam.request()
	if path != "/v1/projects/-/serviceAccounts/deployer@my-project.iam.gserviceaccount.com:generateAccessToken" {
		t.Errorf("path = %q", path)
	}
	if body["lifetime"] != "900s" {
		t.Errorf("lifetime = %v, want 900s", body["lifetime"])
	}
	if s, _ := json.Marshal(body["scope"]); string(s) != `["https://www.googleapis.com/auth/cloud-platform"]` {
		t.Errorf("scope = %s", s)
	}
	if d, _ := json.Marshal(body["delegates"]); string(d) != `["projects/-/serviceAccounts/hop@my-project.iam.gserviceaccount.com"]` {
		t.Errorf("delegates = %s", d)
	}

	// Cached until the refresh margin, then minted again.
	clock.Advance(12 * time.Minute)
	if again, _, err := b.Token(context.Background(), target); err != nil || again != tok || iam.calls.Load() != 1 {
		t.Fatalf("within lifetime: %q, %v, calls=%d", again, err, iam.calls.Load())
	}
	clock.Advance(time.Minute)
	if fresh, _, err := b.Token(context.Background(), target); err != nil || fresh == tok || iam.calls.Load() != 2 {
		t.Fatalf("inside the margin: %q, %v, calls=%d", fresh, err, iam.calls.Load())
	}
	if mints, hits := b.Stats(); mints != 2 || hits != 1 {
		t.Errorf("Stats = %d, %d; want 2, 1", mints, hits)
	}
}

func TestGCPErrors(t *testing.T) {
	iam := newFakeIAMCredentials(t, time.Now)
	ctx := context.Background()

	wrongBase := newTestGCPBroker(t, memory.New(nil), testKey(t), nil, "ya29.someone-else")
	_, _, err := wrongBase.Token(ctx, gcpTarget(iam.URL))
	if err == nil || !strings.HasPrefix(err.Error(), "mint gcp token for target prod-gcp: ") {
		t.Errorf("wrong base identity: %v", err)
	} else if strings.Contains(err.Error(), "ya29.") {
		t.Errorf("error leaks a token: %v", err)
	}

	b := newTestGCPBroker(t, memory.New(nil), testKey(t), nil, gcpBaseToken)
	long := gcpTarget(iam.URL)
	long.Duration = config.Duration(2 * time.Hour)
	if _, _, err := b.Token(ctx, long); err == nil || !strings.Contains(err.Error(), "lifetime") {
		t.Errorf("lifetime over an hour: %v", err)
	}
	if _, _, err := b.Token(ctx, &config.Target{Name: "a", Cloud: "aws"}); err == nil {
		t.Error("minted a gcp token for an aws target")
	}
	// The IAM endpoint is per target: a second endpoint gets its own client.
	other := newFakeIAMCredentials(t, time.Now)
	if _, _, err := b.Token(ctx, gcpTarget(other.URL)); err != nil || other.calls.Load() != 1 {
		t.Errorf("second endpoint: %v, calls=%d", err, other.calls.Load())
	}
}

func TestGCPSingleFlight(t *testing.T) {
	iam := newFakeIAMCredentials(t, time.Now)
	iam.delay = 50 * time.Millisecond
	shared := memory.New(nil)
	key := testKey(t)
	replicas := []*GCPBroker{
		newTestGCPBroker(t, shared, key, nil, gcpBaseToken),
		newTestGCPBroker(t, shared, key, nil, gcpBaseToken),
	}
	target := gcpTarget(iam.URL)
	var wg sync.WaitGroup
	start := make(chan struct{})
	toks := make([]string, 500)
	for i := range toks {
		wg.Go(func() {
			<-start
			tok, _, err := replicas[i%2].Token(context.Background(), target)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		})
	}
	close(start)
	wg.Wait()
	if iam.calls.Load() != 1 {
		t.Fatalf("generateAccessToken calls = %d, want 1", iam.calls.Load())
	}
	for i, tok := range toks {
		if tok != toks[0] {
			t.Fatalf("caller %d got %q, caller 0 %q", i, tok, toks[0])
		}
	}
}

// countingStore counts the store reads a broker makes.
type countingStore struct {
	*memory.Store
	gets atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, key)
}

func TestGCPRepeatTokenIsServedWithoutTheStore(t *testing.T) {
	// A token this process already holds is handed out from memory: no store read (a Redis
	// round trip and AES-GCM) per call. The refresh margin still applies.
	clock := newFakeClock()
	iam := newFakeIAMCredentials(t, clock.Now)
	st := &countingStore{Store: memory.New(clock.Now)}
	b, err := NewGCPBroker(GCPBrokerConfig{BrokerConfig: BrokerConfig{Store: st, Key: testKey(t), Now: clock.Now},
		ClientOptions: []option.ClientOption{option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: gcpBaseToken}))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	target := gcpTarget(iam.URL)
	tok, _, err := b.Token(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	reads := st.gets.Load()
	for range 5 {
		if again, _, err := b.Token(context.Background(), target); err != nil || again != tok {
			t.Fatalf("repeat: %q, %v", again, err)
		}
	}
	if n := st.gets.Load() - reads; n != 0 {
		t.Errorf("5 repeats read the store %d times, want 0", n)
	}
	clock.Advance(13 * time.Minute) // inside the 2-minute margin of a 15-minute token
	if fresh, _, err := b.Token(context.Background(), target); err != nil || fresh == tok || iam.calls.Load() != 2 {
		t.Fatalf("inside the margin: %q, %v, calls=%d", fresh, err, iam.calls.Load())
	}
}
