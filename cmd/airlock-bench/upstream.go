package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// sigV4Checker recomputes a request's SigV4 signature with the one key pair it accepts and
// refuses any mismatch, as AWS does. It is deliberately independent of authn's verifier.
type sigV4Checker struct {
	creds aws.Credentials
	keys  sync.Map // "date/region/service" -> derived signing key
}

var errNotSigned = errors.New("request not signed with the expected credentials")

// check verifies r; body is the request body when the caller read it (small bodies), else nil
// and the payload hash comes from X-Amz-Content-Sha256.
func (c *sigV4Checker) check(r *http.Request, body []byte) error {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 Credential="+c.creds.AccessKeyID+"/")
	if !ok {
		return errNotSigned
	}
	if r.Header.Get("X-Amz-Security-Token") != c.creds.SessionToken {
		return errors.New("wrong or missing session token")
	}
	scope, rest, _ := strings.Cut(rest, ",")
	var signedList, signature string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "SignedHeaders":
			signedList = v
		case "Signature":
			signature = v
		}
	}
	parts := strings.Split(scope, "/") // date/region/service/aws4_request
	if len(parts) != 4 {
		return errors.New("bad credential scope")
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		if body == nil && r.ContentLength != 0 {
			return errors.New("no payload hash")
		}
		s := sha256.Sum256(body)
		payload = hex.EncodeToString(s[:])
	} else if body != nil && payload != "UNSIGNED-PAYLOAD" {
		s := sha256.Sum256(body)
		if hex.EncodeToString(s[:]) != payload {
			return errors.New("body does not match x-amz-content-sha256")
		}
	}
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path, _, _ := strings.Cut(r.RequestURI, "?")
	if path == "" {
		path = "/"
	}
	if parts[2] != "s3" {
		path = uriEncode(path, false) // the SDK escapes the already-escaped path once more
	}
	b.WriteString(path)
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	for name := range strings.SplitSeq(signedList, ";") {
		b.WriteString(name)
		b.WriteByte(':')
		switch name {
		case "host":
			b.WriteString(r.Host)
		case "content-length":
			b.WriteString(strconv.FormatInt(r.ContentLength, 10))
		default:
			b.WriteString(strings.TrimSpace(strings.Join(r.Header.Values(name), ",")))
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(signedList)
	b.WriteByte('\n')
	b.WriteString(payload)
	creq := sha256.Sum256([]byte(b.String()))
	sts := "AWS4-HMAC-SHA256\n" + r.Header.Get("X-Amz-Date") + "\n" + scope + "\n" + hex.EncodeToString(creq[:])
	want := hmacSum(c.key(parts[0], parts[1], parts[2]), sts)
	got, err := hex.DecodeString(signature)
	if err != nil || !hmac.Equal(want, got) {
		return errors.New("signature mismatch")
	}
	if d, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date")); err != nil || time.Since(d).Abs() > 15*time.Minute {
		return errors.New("bad or skewed X-Amz-Date")
	}
	return nil
}

func (c *sigV4Checker) key(date, region, service string) []byte {
	id := date + "/" + region + "/" + service
	if k, ok := c.keys.Load(id); ok {
		return k.([]byte)
	}
	k := hmacSum([]byte("AWS4"+c.creds.SecretAccessKey), date)
	k = hmacSum(k, region)
	k = hmacSum(k, service)
	k = hmacSum(k, "aws4_request")
	c.keys.Store(id, k)
	return k
}

func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	var pairs [][2]string
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if u, err := url.QueryUnescape(k); err == nil {
			k = u
		}
		if u, err := url.QueryUnescape(v); err == nil {
			v = u
		}
		pairs = append(pairs, [2]string{uriEncode(k, true), uriEncode(v, true)})
	}
	slices.SortFunc(pairs, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p[0] + "=" + p[1])
	}
	return b.String()
}

func uriEncode(s string, encodeSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// fakeAWS answers the workload's EC2, DynamoDB and S3 calls after checking their signature.
type fakeAWS struct {
	check    sigV4Checker
	ok       atomic.Int64
	refused  atomic.Int64
	putBytes atomic.Int64
	lastErr  atomic.Value
}

// bigObjectSize is the size of the streamed upload and download.
const bigObjectSize = 64 << 20

var (
	describeInstancesXML = []byte(`<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>8f7e3c2a-1111-2222-3333-444455556666</requestId><reservationSet><item><reservationId>r-0123456789abcdef0</reservationId><ownerId>111122223333</ownerId><instancesSet><item><instanceId>i-0abc123def4567890</instanceId><imageId>ami-0abcdef1234567890</imageId><instanceState><code>16</code><name>running</name></instanceState><privateDnsName>ip-10-0-0-12.ec2.internal</privateDnsName><instanceType>t3.micro</instanceType><launchTime>2026-01-01T00:00:00.000Z</launchTime><placement><availabilityZone>us-east-1a</availabilityZone></placement><subnetId>subnet-0123456789abcdef0</subnetId><vpcId>vpc-0123456789abcdef0</vpcId><privateIpAddress>10.0.0.12</privateIpAddress><tagSet><item><key>Name</key><value>web-1</value></item></tagSet></item></instancesSet></item></reservationSet></DescribeInstancesResponse>`)
	getItemJSON   = []byte(`{"Item":{"pk":{"S":"order#1234"},"status":{"S":"shipped"},"total":{"N":"42.50"},"items":{"L":[{"S":"sku-1"},{"S":"sku-2"}]}}}`)
	smallObject   = bytes.Repeat([]byte("airlock-bench-object-"), 200) // ~4 KiB
	listObjectXML = []byte(`<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bench</Name><Prefix>logs/</Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>logs/a.json</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"abc"</ETag><Size>1024</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>logs/b.json</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"def"</ETag><Size>2048</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>logs/c.json</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"ghi"</ETag><Size>4096</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>`)
	fillChunk = bytes.Repeat([]byte{0xa5}, 64<<10)
)

func (u *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Header.Get("X-Amz-Content-Sha256") != "UNSIGNED-PAYLOAD" && r.ContentLength >= 0 && r.ContentLength <= 1<<20 {
		body, _ = io.ReadAll(r.Body)
	}
	if err := u.check.check(r, body); err != nil {
		u.refused.Add(1)
		u.lastErr.Store(err.Error())
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "<Error><Code>SignatureDoesNotMatch</Code><Message>"+err.Error()+"</Message></Error>")
		return
	}
	u.ok.Add(1)
	switch {
	case r.Header.Get("X-Amz-Target") != "":
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Write(getItemJSON)
	case r.Method == http.MethodPost && r.URL.Path == "/":
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.Write(describeInstancesXML)
	case r.Method == http.MethodPut:
		n, _ := io.Copy(io.Discard, r.Body)
		u.putBytes.Add(n + int64(len(body)))
		w.Header().Set("ETag", `"bench"`)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Query().Get("list-type") == "2":
		w.Header().Set("Content-Type", "application/xml")
		w.Write(listObjectXML)
	case strings.HasSuffix(r.URL.Path, "/big"):
		w.Header().Set("Content-Length", strconv.Itoa(bigObjectSize))
		w.Header().Set("Content-Type", "application/octet-stream")
		for left := bigObjectSize; left > 0; left -= len(fillChunk) {
			if _, err := w.Write(fillChunk[:min(left, len(fillChunk))]); err != nil {
				return
			}
		}
	default: // GetObject / HeadObject
		w.Header().Set("Content-Length", strconv.Itoa(len(smallObject)))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("ETag", `"0123456789abcdef"`)
		if r.Method == http.MethodGet {
			w.Write(smallObject)
		}
	}
}

// fakeSTS answers AssumeRole with fixed temporary credentials (the ones fakeAWS accepts) after
// checking the broker's signature with the base credentials, and counts the calls per
// (role, session name, session policy).
type fakeSTS struct {
	check    sigV4Checker
	minted   aws.Credentials
	mu       sync.Mutex
	calls    map[string]int
	total    atomic.Int64
	refusals atomic.Int64
}

func (s *fakeSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := s.check.check(r, body); err != nil {
		s.refusals.Add(1)
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>`+err.Error()+`</Message></Error></ErrorResponse>`)
		return
	}
	form, _ := url.ParseQuery(string(body))
	if form.Get("Action") != "AssumeRole" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	key := form.Get("RoleArn") + "|" + form.Get("RoleSessionName") + "|" + form.Get("Policy")
	s.mu.Lock()
	s.calls[key]++
	s.mu.Unlock()
	s.total.Add(1)
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/airlock-bench/%s</Arn><AssumedRoleId>AROABENCH:%s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata></AssumeRoleResponse>`,
		s.minted.AccessKeyID, s.minted.SecretAccessKey, s.minted.SessionToken, exp, form.Get("RoleSessionName"), form.Get("RoleSessionName"))
}

// reset forgets the counts.
func (s *fakeSTS) reset() {
	s.mu.Lock()
	s.calls = map[string]int{}
	s.mu.Unlock()
	s.total.Store(0)
}

// perKey returns the distinct keys seen and the largest count of any one key.
func (s *fakeSTS) perKey() (keys, maxPerKey int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.calls {
		maxPerKey = max(maxPerKey, n)
	}
	return len(s.calls), maxPerKey
}
