package awsmodel

// iamActionOverrides maps "model/Operation" to the IAM action name (without the service
// prefix) where IAM does not name the permission after the API operation. Policies are
// written against IAM names (s3:ListBucket, lambda:InvokeFunction), so the catalog reports
// those; Action.Operation keeps the API name. Sources: the Service Authorization Reference
// pages for Amazon S3 and AWS Lambda ("Actions defined by ...", column "API operations").
// Only mismatches that are certain are listed; anything else keeps service:Operation. A value
// with a colon is a whole action of another IAM prefix.
var iamActionOverrides = map[string]string{
	// Lambda: invocation permissions.
	"lambda/Invoke":                   "InvokeFunction",
	"lambda/InvokeWithResponseStream": "InvokeFunction",

	// S3 objects.
	"s3/HeadObject":              "GetObject",
	"s3/SelectObjectContent":     "GetObject",
	"s3/CopyObject":              "PutObject",
	"s3/CreateMultipartUpload":   "PutObject",
	"s3/UploadPart":              "PutObject",
	"s3/UploadPartCopy":          "PutObject",
	"s3/CompleteMultipartUpload": "PutObject",
	"s3/DeleteObjects":           "DeleteObject",
	"s3/ListParts":               "ListMultipartUploadParts",

	// S3 buckets and listing.
	"s3/ListBuckets":            "ListAllMyBuckets",
	"s3/ListDirectoryBuckets":   "s3express:ListAllMyDirectoryBuckets",
	"s3/CreateSession":          "s3express:CreateSession",
	"s3/WriteGetObjectResponse": "s3-object-lambda:WriteGetObjectResponse",
	"s3/HeadBucket":             "ListBucket",
	"s3/ListObjects":            "ListBucket",
	"s3/ListObjectsV2":          "ListBucket",
	"s3/ListObjectVersions":     "ListBucketVersions",
	"s3/ListMultipartUploads":   "ListBucketMultipartUploads",

	// S3 bucket configuration: IAM names the configuration, and a Delete is a Put of nothing.
	"s3/GetBucketLifecycleConfiguration":             "GetLifecycleConfiguration",
	"s3/PutBucketLifecycleConfiguration":             "PutLifecycleConfiguration",
	"s3/GetBucketLifecycle":                          "GetLifecycleConfiguration",
	"s3/PutBucketLifecycle":                          "PutLifecycleConfiguration",
	"s3/DeleteBucketLifecycle":                       "PutLifecycleConfiguration",
	"s3/GetBucketNotificationConfiguration":          "GetBucketNotification",
	"s3/PutBucketNotificationConfiguration":          "PutBucketNotification",
	"s3/GetBucketEncryption":                         "GetEncryptionConfiguration",
	"s3/PutBucketEncryption":                         "PutEncryptionConfiguration",
	"s3/DeleteBucketEncryption":                      "PutEncryptionConfiguration",
	"s3/GetBucketReplication":                        "GetReplicationConfiguration",
	"s3/PutBucketReplication":                        "PutReplicationConfiguration",
	"s3/DeleteBucketReplication":                     "PutReplicationConfiguration",
	"s3/GetBucketCors":                               "GetBucketCORS",
	"s3/PutBucketCors":                               "PutBucketCORS",
	"s3/DeleteBucketCors":                            "PutBucketCORS",
	"s3/DeleteBucketTagging":                         "PutBucketTagging",
	"s3/DeleteBucketOwnershipControls":               "PutBucketOwnershipControls",
	"s3/GetPublicAccessBlock":                        "GetBucketPublicAccessBlock",
	"s3/PutPublicAccessBlock":                        "PutBucketPublicAccessBlock",
	"s3/DeletePublicAccessBlock":                     "PutBucketPublicAccessBlock",
	"s3/GetObjectLockConfiguration":                  "GetBucketObjectLockConfiguration",
	"s3/PutObjectLockConfiguration":                  "PutBucketObjectLockConfiguration",
	"s3/GetBucketAccelerateConfiguration":            "GetAccelerateConfiguration",
	"s3/PutBucketAccelerateConfiguration":            "PutAccelerateConfiguration",
	"s3/GetBucketAnalyticsConfiguration":             "GetAnalyticsConfiguration",
	"s3/ListBucketAnalyticsConfigurations":           "GetAnalyticsConfiguration",
	"s3/PutBucketAnalyticsConfiguration":             "PutAnalyticsConfiguration",
	"s3/DeleteBucketAnalyticsConfiguration":          "PutAnalyticsConfiguration",
	"s3/GetBucketInventoryConfiguration":             "GetInventoryConfiguration",
	"s3/ListBucketInventoryConfigurations":           "GetInventoryConfiguration",
	"s3/PutBucketInventoryConfiguration":             "PutInventoryConfiguration",
	"s3/DeleteBucketInventoryConfiguration":          "PutInventoryConfiguration",
	"s3/GetBucketMetricsConfiguration":               "GetMetricsConfiguration",
	"s3/ListBucketMetricsConfigurations":             "GetMetricsConfiguration",
	"s3/PutBucketMetricsConfiguration":               "PutMetricsConfiguration",
	"s3/DeleteBucketMetricsConfiguration":            "PutMetricsConfiguration",
	"s3/GetBucketIntelligentTieringConfiguration":    "GetIntelligentTieringConfiguration",
	"s3/ListBucketIntelligentTieringConfigurations":  "GetIntelligentTieringConfiguration",
	"s3/PutBucketIntelligentTieringConfiguration":    "PutIntelligentTieringConfiguration",
	"s3/DeleteBucketIntelligentTieringConfiguration": "PutIntelligentTieringConfiguration",
}

// IAMActionName returns the IAM action name (without prefix) for an operation of a model.
func IAMActionName(model, operation string) string {
	if n, ok := iamActionOverrides[model+"/"+operation]; ok {
		return n
	}
	return operation
}
