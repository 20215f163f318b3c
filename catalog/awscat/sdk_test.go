package awscat

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/airlockhq/airlock/catalog"
)

// captureServer records the requests real SDK clients send to an endpoint-mode Airlock and
// answers every one with an error, so each call returns at once.
type captureServer struct {
	srv      *httptest.Server
	baseHost string // "airlock.test:PORT": resolvable for any subdomain through dial
	mu       sync.Mutex
	last     Request
	count    int
}

var credentialScope = regexp.MustCompile(`Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request`)

func newCaptureServer(t *testing.T) *captureServer {
	c := &captureServer{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := Request{
			Method: r.Method, Host: r.Host, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: body, BaseHost: c.baseHost,
		}
		if m := credentialScope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			req.Region, req.Service = m[1], m[2]
		}
		c.mu.Lock()
		c.last = req
		c.count++
		c.mu.Unlock()
		http.Error(w, "captured", http.StatusTeapot)
	}))
	t.Cleanup(c.srv.Close)
	_, port, _ := net.SplitHostPort(c.srv.Listener.Addr().String())
	c.baseHost = "airlock.test:" + port
	return c
}

func (c *captureServer) config() aws.Config {
	addr := c.srv.Listener.Addr().String()
	dialer := &net.Dialer{}
	return aws.Config{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		BaseEndpoint: aws.String("http://" + c.baseHost),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
		HTTPClient: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, addr)
			},
		}},
	}
}

func (c *captureServer) request() (Request, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, c.count
}

func TestNameCapturedSDKRequests(t *testing.T) {
	c := newCaptureServer(t)
	cfg := c.config()
	ctx := context.Background()
	s3Path := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	s3Virtual := s3.NewFromConfig(cfg)
	ec2c, iamc, ddb := ec2.NewFromConfig(cfg), iam.NewFromConfig(cfg), dynamodb.NewFromConfig(cfg)
	lam, stsc := lambda.NewFromConfig(cfg), sts.NewFromConfig(cfg)

	tests := []struct {
		name     string
		call     func() error
		action   string
		resource string
		risk     catalog.Risk
	}{
		{"s3 DeleteObject path-style", func() error {
			_, err := s3Path.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/key.txt")})
			return err
		}, "s3:DeleteObject", "arn:aws:s3:::bkt/dir/key.txt", catalog.Destructive},
		{"s3 DeleteObject virtual-hosted", func() error {
			_, err := s3Virtual.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/key.txt")})
			return err
		}, "s3:DeleteObject", "arn:aws:s3:::bkt/dir/key.txt", catalog.Destructive},
		{"s3 GetObject", func() error {
			_, err := s3Virtual.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("a b+c.txt")})
			return err
		}, "s3:GetObject", "arn:aws:s3:::bkt/a b+c.txt", catalog.Read},
		{"s3 PutObject", func() error {
			_, err := s3Path.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), Body: strings.NewReader("hello")})
			return err
		}, "s3:PutObject", "arn:aws:s3:::bkt/k", catalog.Write},
		{"s3 CopyObject", func() error {
			_, err := s3Path.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k2"), CopySource: aws.String("bkt/k")})
			return err
		}, "s3:PutObject", "arn:aws:s3:::bkt/k2", catalog.Write},
		{"s3 ListObjectsV2", func() error {
			_, err := s3Virtual.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bkt")})
			return err
		}, "s3:ListBucket", "arn:aws:s3:::bkt", catalog.Read},
		{"s3 ListBuckets", func() error {
			_, err := s3Path.ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		}, "s3:ListAllMyBuckets", "", catalog.Read},
		{"s3 PutBucketPolicy", func() error {
			_, err := s3Path.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("bkt"), Policy: aws.String("{}")})
			return err
		}, "s3:PutBucketPolicy", "arn:aws:s3:::bkt", catalog.Privilege},
		{"s3 PutBucketTagging", func() error {
			_, err := s3Virtual.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String("bkt"),
				Tagging: &s3types.Tagging{TagSet: []s3types.Tag{{Key: aws.String("team"), Value: aws.String("sre")}}}})
			return err
		}, "s3:PutBucketTagging", "arn:aws:s3:::bkt", catalog.Write},
		{"s3 CreateMultipartUpload", func() error {
			_, err := s3Path.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("big")})
			return err
		}, "s3:PutObject", "arn:aws:s3:::bkt/big", catalog.Write},
		{"s3 UploadPart", func() error {
			_, err := s3Path.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("bkt"), Key: aws.String("big"), PartNumber: aws.Int32(1), UploadId: aws.String("u1"), Body: strings.NewReader("x")})
			return err
		}, "s3:PutObject", "arn:aws:s3:::bkt/big", catalog.Write},
		{"s3 DeleteBucket", func() error {
			_, err := s3Virtual.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("bkt")})
			return err
		}, "s3:DeleteBucket", "arn:aws:s3:::bkt", catalog.Destructive},
		{"ec2 TerminateInstances", func() error {
			_, err := ec2c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0abc", "i-0def"}})
			return err
		}, "ec2:TerminateInstances", "i-0abc,i-0def", catalog.Destructive},
		{"ec2 DescribeInstances", func() error {
			_, err := ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			return err
		}, "ec2:DescribeInstances", "", catalog.Read},
		{"ec2 ModifyInstanceAttribute", func() error {
			_, err := ec2c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String("i-0abc")})
			return err
		}, "ec2:ModifyInstanceAttribute", "i-0abc", catalog.Privilege},
		{"dynamodb DeleteTable", func() error {
			_, err := ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String("orders")})
			return err
		}, "dynamodb:DeleteTable", "orders", catalog.Destructive},
		{"dynamodb GetItem", func() error {
			_, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("orders"),
				Key: map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: "1"}}})
			return err
		}, "dynamodb:GetItem", "orders", catalog.Read},
		{"iam AttachRolePolicy", func() error {
			_, err := iamc.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("deployer"), PolicyArn: aws.String("arn:aws:iam::aws:policy/AdministratorAccess")})
			return err
		}, "iam:AttachRolePolicy", "deployer", catalog.Privilege},
		{"iam CreateAccessKey", func() error {
			_, err := iamc.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("alice")})
			return err
		}, "iam:CreateAccessKey", "alice", catalog.Privilege},
		{"iam ListRoles", func() error {
			_, err := iamc.ListRoles(ctx, &iam.ListRolesInput{})
			return err
		}, "iam:ListRoles", "", catalog.Read},
		{"lambda Invoke", func() error {
			_, err := lam.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("my-fn")})
			return err
		}, "lambda:InvokeFunction", "my-fn", catalog.Write},
		{"lambda GetFunction", func() error {
			_, err := lam.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("my-fn")})
			return err
		}, "lambda:GetFunction", "my-fn", catalog.Privilege},
		{"lambda DeleteFunction", func() error {
			_, err := lam.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("arn:aws:lambda:eu-west-1:123456789012:function:my-fn")})
			return err
		}, "lambda:DeleteFunction", "arn:aws:lambda:eu-west-1:123456789012:function:my-fn", catalog.Destructive},
		{"lambda ListFunctions", func() error {
			_, err := lam.ListFunctions(ctx, &lambda.ListFunctionsInput{})
			return err
		}, "lambda:ListFunctions", "", catalog.Read},
		{"sts AssumeRole", func() error {
			_, err := stsc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/admin"), RoleSessionName: aws.String("s")})
			return err
		}, "sts:AssumeRole", "arn:aws:iam::123456789012:role/admin", catalog.Privilege},
		{"sts GetCallerIdentity", func() error {
			_, err := stsc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			return err
		}, "sts:GetCallerIdentity", "", catalog.Read},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, before := c.request()
			if err := tt.call(); err == nil {
				t.Fatal("the capture server answers every call with an error")
			}
			r, after := c.request()
			if after == before {
				t.Fatal("the client sent nothing (failed validation?)")
			}
			got := Name(r)
			if op := strings.Fields(tt.name)[1]; got.Operation != op {
				t.Errorf("operation %q, want %q", got.Operation, op)
			}
			if !got.Known || got.IAMAction != tt.action || got.Resource != tt.resource || got.Risk != tt.risk || got.Region != "eu-west-1" {
				t.Errorf("%s %s%s?%s (service %q)\n got  %s resource %q risk %s region %q known %v\n want %s resource %q risk %s",
					r.Method, r.Host, r.Path, r.RawQuery, r.Service, got.IAMAction, got.Resource, got.Risk, got.Region, got.Known, tt.action, tt.resource, tt.risk)
			}
		})
	}
}
