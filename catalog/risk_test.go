package catalog

import "testing"

func TestDefaultRisk(t *testing.T) {
	tests := []struct {
		cloud, service, op string
		want               Risk
	}{
		// AWS name rules.
		{AWS, "ec2", "DescribeInstances", Read},
		{AWS, "dynamodb", "BatchGetItem", Read},
		{AWS, "dynamodb", "Query", Read},
		{AWS, "dynamodb", "Scan", Read},
		{AWS, "s3", "HeadObject", Read},
		{AWS, "ec2", "TerminateInstances", Destructive},
		{AWS, "s3", "DeleteObject", Destructive},
		{AWS, "dynamodb", "BatchWriteItem", Write},
		{AWS, "sqs", "PurgeQueue", Destructive},
		{AWS, "ec2", "RunInstances", Write},
		{AWS, "s3", "PutObject", Write},
		{AWS, "lambda", "AddPermission", Privilege},
		{AWS, "kms", "CreateGrant", Privilege},
		{AWS, "iam", "AttachRolePolicy", Privilege},
		{AWS, "iam", "UpdateAssumeRolePolicy", Privilege},
		{AWS, "iam", "PutRolePolicy", Privilege},
		{AWS, "iam", "CreateAccessKey", Privilege},
		{AWS, "iam", "DeleteRole", Privilege},
		{AWS, "iam", "ListRoles", Read},
		{AWS, "iam", "GetRolePolicy", Read},
		{AWS, "organizations", "LeaveOrganization", Privilege},
		{AWS, "s3", "GetBucketPolicy", Read},
		{AWS, "ecr", "SetRepositoryPolicy", Privilege},
		{AWS, "ecr", "PutLifecyclePolicy", Write},
		{AWS, "autoscaling", "PutScalingPolicy", Write},
		{AWS, "logs", "PutRetentionPolicy", Write},
		{AWS, "ec2", "CreateNetworkAcl", Write},
		{AWS, "ec2", "DeleteNetworkAcl", Destructive},
		{AWS, "redshift", "GetClusterCredentials", Privilege},
		{AWS, "ecr", "GetAuthorizationToken", Privilege},
		// AWS reviewed exceptions.
		{AWS, "iam", "PassRole", Privilege},
		{AWS, "cloudformation", "CreateStack", Privilege},
		{AWS, "cloudformation", "UpdateStackSet", Privilege},
		{AWS, "cloudformation", "CreateChangeSet", Write}, // plans only; executing it is privilege
		{AWS, "cloudformation", "ExecuteChangeSet", Privilege},
		{GCP, "deploymentmanager", "deploymentmanager.deployments.insert", Privilege},
		{Azure, "Microsoft.Resources", "deployments/write", Privilege},
		{AWS, "sts", "AssumeRole", Privilege},
		{AWS, "sts", "AssumeRoleWithWebIdentity", Privilege},
		{AWS, "sts", "GetSessionToken", Privilege},
		{AWS, "sts", "GetFederationToken", Privilege},
		{AWS, "sts", "GetCallerIdentity", Read},
		{AWS, "kms", "Decrypt", Privilege},
		{AWS, "kms", "GenerateDataKeyWithoutPlaintext", Privilege},
		{AWS, "secretsmanager", "GetSecretValue", Privilege},
		{AWS, "secretsmanager", "DescribeSecret", Read},
		{AWS, "ssm", "GetParameter", Privilege},
		{AWS, "ssm", "GetParameters", Privilege},
		{AWS, "s3", "GetObject", Read},
		{AWS, "ec2", "ModifyInstanceAttribute", Privilege},
		{AWS, "ec2", "GetPasswordData", Privilege},
		{AWS, "lambda", "GetFunction", Privilege},
		{AWS, "rds", "GenerateDbAuthToken", Privilege},
		{AWS, "ec2-instance-connect", "SendSSHPublicKey", Privilege},
		{AWS, "s3", "PutBucketPolicy", Privilege},
		{AWS, "s3", "PutBucketAcl", Privilege},
		{AWS, "s3", "DeleteBucketPolicy", Privilege},
		{AWS, "S3", "putbucketpolicy", Privilege}, // exceptions match case-insensitively
		// GCP.
		{GCP, "compute", "instances.delete", Destructive},
		{GCP, "compute", "compute.instances.delete", Destructive},
		{GCP, "compute", "instances.get", Read},
		{GCP, "compute", "instances.list", Read},
		{GCP, "compute", "instances.aggregatedList", Read},
		{GCP, "compute", "instances.insert", Write},
		{GCP, "compute", "instances.stop", Write},
		{GCP, "cloudresourcemanager", "projects.setIamPolicy", Privilege},
		{GCP, "storage", "buckets.setIamPolicy", Privilege},
		{GCP, "storage", "buckets.getIamPolicy", Read},
		{GCP, "storage", "objects.get", Read},
		{GCP, "iam", "projects.serviceAccounts.keys.create", Privilege},
		{GCP, "iam", "iam.serviceAccountKeys.create", Privilege},
		{GCP, "iam", "projects.serviceAccounts.list", Read},
		{GCP, "iamcredentials", "serviceAccounts.generateAccessToken", Privilege},
		{GCP, "iamcredentials", "projects.serviceAccounts.signBlob", Privilege},
		{GCP, "iam", "projects.serviceAccounts.keys.get", Read},
		{GCP, "sql", "users.update", Privilege},
		{GCP, "sql", "instances.delete", Destructive},
		{GCP, "compute", "firewalls.patch", Write},
		{GCP, "secretmanager", "projects.secrets.versions.access", Privilege},
		{GCP, "cloudkms", "projects.locations.keyRings.cryptoKeys.decrypt", Privilege},
		{GCP, "compute", "instances.setMetadata", Privilege},
		// Azure.
		{Azure, "Microsoft.Compute", "virtualMachines/read", Read},
		{Azure, "Microsoft.Compute", "virtualMachines/delete", Destructive},
		{Azure, "Microsoft.Compute", "virtualMachines/write", Write},
		{Azure, "Microsoft.Compute", "virtualMachines/start/action", Write},
		{Azure, "Microsoft.Compute", "virtualMachines/runCommand/action", Privilege},
		{Azure, "Microsoft.Authorization", "roleAssignments/write", Privilege},
		{Azure, "Microsoft.Authorization", "roleAssignments/delete", Privilege},
		{Azure, "Microsoft.Authorization", "roleAssignments/read", Read},
		{Azure, "Microsoft.Storage", "storageAccounts/listKeys/action", Privilege},
		{Azure, "Microsoft.Storage", "storageAccounts/regenerateKey/action", Privilege},
		{Azure, "Microsoft.Web", "sites/config/list/action", Privilege},
		{Azure, "Microsoft.ContainerService", "managedClusters/listClusterAdminCredential/action", Privilege},
		{Azure, "Microsoft.KeyVault", "vaults/accessPolicies/write", Privilege},
		// Unknown cloud: never harmless.
		{"oracle", "x", "GetThing", Privilege},
	}
	for _, tt := range tests {
		if got := DefaultRisk(tt.cloud, tt.service, tt.op); got != tt.want {
			t.Errorf("DefaultRisk(%s, %s, %s) = %s, want %s", tt.cloud, tt.service, tt.op, got, tt.want)
		}
	}
}

func TestRiskExceptionsAreReviewed(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range RiskExceptions() {
		if e.Why == "" || e.Risk == RiskUnknown {
			t.Errorf("%s %s: every exception needs a tier and a reason", e.Cloud, e.Pattern)
		}
		k := e.Cloud + " " + e.Pattern
		if seen[k] {
			t.Errorf("%s listed twice", k)
		}
		seen[k] = true
	}
	if RiskExceptionReason(AWS, "iam", "PassRole") == "" || RiskExceptionReason(AWS, "ec2", "RunInstances") != "" {
		t.Error("RiskExceptionReason does not find the reviewed entries")
	}
}

func TestCamelWords(t *testing.T) {
	got := camelWords("PutBucketACLForSSHKey2")
	want := []string{"Put", "Bucket", "ACL", "For", "SSH", "Key2"}
	if len(got) != len(want) {
		t.Fatalf("camelWords = %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("camelWords = %q, want %q", got, want)
		}
	}
}
