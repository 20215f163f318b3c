package catalog

import "strings"

// riskException is one hand-reviewed default tier that the name-based rules in risk.go get wrong.
// Pattern may end in "*". Every entry says why; review changes to this file like a policy change.
type riskException struct {
	Cloud   string
	Pattern string // service:Operation (AWS), service.resource.method (GCP), Provider/type/op (Azure)
	Risk    Risk
	Why     string
}

var riskExceptions = []riskException{
	// AWS: credentials and identity.
	{AWS, "iam:PassRole", Privilege, "lets a service act with a role's permissions"},
	{AWS, "sts:AssumeRole*", Privilege, "mints credentials for another role (AssumeRole, WithSAML, WithWebIdentity)"},
	{AWS, "sts:GetSessionToken", Privilege, "mints temporary credentials"},
	{AWS, "sts:GetFederationToken", Privilege, "mints credentials with a chosen policy"},
	{AWS, "sts:GetCallerIdentity", Read, "only says who the caller is"},
	{AWS, "sts:DecodeAuthorizationMessage", Read, "explains an access denial; no credentials"},
	{AWS, "sts:GetAccessKeyInfo", Read, "maps a key id to its account; no secret"},
	{AWS, "sso:GetRoleCredentials", Privilege, "returns role credentials from the access portal"},
	{AWS, "cognito-identity:GetCredentialsForIdentity", Privilege, "returns AWS credentials"},
	{AWS, "cognito-identity:GetOpenIdToken*", Privilege, "returns a token exchangeable for credentials"},
	{AWS, "redshift:GetClusterCredentials*", Privilege, "returns database credentials"},
	{AWS, "redshift-serverless:GetCredentials", Privilege, "returns database credentials"},
	{AWS, "rds:GenerateDbAuthToken", Privilege, "mints a database login token"},
	{AWS, "rds-db:connect", Privilege, "database login with IAM"},
	{AWS, "ecr:GetAuthorizationToken", Privilege, "returns registry credentials"},
	{AWS, "ecr-public:GetAuthorizationToken", Privilege, "returns registry credentials"},
	{AWS, "codeartifact:GetAuthorizationToken", Privilege, "returns repository credentials"},
	{AWS, "ec2-instance-connect:SendSSHPublicKey", Privilege, "grants SSH login to an instance"},
	{AWS, "ec2-instance-connect:SendSerialConsoleSSHPublicKey", Privilege, "grants serial console login"},
	{AWS, "ssm:StartSession", Privilege, "interactive shell on an instance"},
	{AWS, "ssm:SendCommand", Privilege, "runs commands as root on instances"},
	{AWS, "eks:DescribeCluster", Read, "returns the endpoint and CA, not credentials"},

	// AWS: reads that return secrets or data keys.
	{AWS, "kms:Decrypt", Privilege, "returns plaintext of any ciphertext under the key"},
	{AWS, "kms:GenerateDataKey*", Privilege, "returns a plaintext data key"},
	{AWS, "kms:DescribeKey", Read, "metadata only"},
	{AWS, "kms:GetPublicKey", Read, "public half only"},
	{AWS, "secretsmanager:GetSecretValue", Privilege, "returns the secret"},
	{AWS, "secretsmanager:BatchGetSecretValue", Privilege, "returns secrets"},
	{AWS, "secretsmanager:GetRandomPassword", Read, "generates a random string; reads nothing"},
	{AWS, "ssm:GetParameter", Privilege, "returns SecureString values when WithDecryption is set"},
	{AWS, "ssm:GetParameters", Privilege, "returns SecureString values when WithDecryption is set"},
	{AWS, "ssm:GetParametersByPath", Privilege, "returns SecureString values when WithDecryption is set"},
	{AWS, "ssm:GetParameterHistory", Privilege, "returns SecureString values when WithDecryption is set"},
	{AWS, "ec2:GetPasswordData", Privilege, "returns the Windows administrator password"},
	{AWS, "lambda:GetFunction", Privilege, "returns a code download URL and the environment (often secrets)"},
	{AWS, "lambda:GetFunctionConfiguration", Privilege, "returns the environment (often secrets)"},
	{AWS, "s3:GetObject", Read, "data read; stays read (policies may still hold it by bucket)"},
	{AWS, "ec2:GetConsoleOutput", Read, "console log; no credentials"},
	{AWS, "ec2:DescribeInstanceAttribute", Privilege, "can return userData, which often holds secrets"},

	// AWS: writes that change who can do what.
	{AWS, "ec2:ModifyInstanceAttribute", Privilege, "can change userData, instance role path or security groups"},
	{AWS, "ec2:AssociateIamInstanceProfile", Privilege, "gives an instance a role"},
	{AWS, "ec2:ReplaceIamInstanceProfileAssociation", Privilege, "gives an instance a role"},
	{AWS, "ec2:ModifySnapshotAttribute", Privilege, "can share a snapshot with any account"},
	{AWS, "ec2:ModifyImageAttribute", Privilege, "can share an image with any account"},
	{AWS, "rds:ModifyDBSnapshotAttribute", Privilege, "can share a snapshot with any account"},
	{AWS, "rds:ModifyDBClusterSnapshotAttribute", Privilege, "can share a snapshot with any account"},
	{AWS, "ec2:AuthorizeSecurityGroupIngress", Write, "network rule; kept write, hold by pattern if needed"},
	{AWS, "s3:PutBucketPolicy", Privilege, "changes who can access the bucket"},
	{AWS, "s3:DeleteBucketPolicy", Privilege, "changes who can access the bucket"},
	{AWS, "s3:PutBucketAcl", Privilege, "changes who can access the bucket"},
	{AWS, "s3:PutObjectAcl", Privilege, "changes who can access the object"},
	{AWS, "s3:PutBucketPublicAccessBlock", Privilege, "can make a bucket public"},
	{AWS, "s3:DeleteBucketPublicAccessBlock", Privilege, "can make a bucket public"},
	{AWS, "s3:PutPublicAccessBlock", Privilege, "account-wide public access switch (s3control)"},
	{AWS, "s3:DeletePublicAccessBlock", Privilege, "account-wide public access switch (s3control)"},
	{AWS, "s3:PutBucketOwnershipControls", Privilege, "switches ACLs on or off"},
	{AWS, "lambda:UpdateFunctionCode", Privilege, "runs new code with the function's role"},
	{AWS, "lambda:UpdateFunctionConfiguration", Privilege, "can change the function's role"},
	{AWS, "lambda:CreateFunctionUrlConfig", Privilege, "can expose the function publicly"},
	{AWS, "sns:AddPermission", Privilege, "resource policy"},
	{AWS, "sqs:AddPermission", Privilege, "resource policy"},
	{AWS, "sqs:SetQueueAttributes", Privilege, "can set the queue policy"},
	{AWS, "sns:SetTopicAttributes", Privilege, "can set the topic policy"},
	{AWS, "glacier:SetVaultAccessPolicy", Privilege, "resource policy"},
	{AWS, "cloudtrail:StopLogging", Privilege, "blinds the audit trail"},
	{AWS, "cloudtrail:DeleteTrail", Privilege, "blinds the audit trail"},
	{AWS, "guardduty:DeleteDetector", Privilege, "disables threat detection"},
	{AWS, "cloudformation:CreateStack*", Privilege, "creates whatever the template declares, IAM roles and policies included (stacks, stack sets, instances)"},
	{AWS, "cloudformation:UpdateStack*", Privilege, "changes whatever the template declares, IAM roles and policies included"},
	{AWS, "cloudformation:ExecuteChangeSet", Privilege, "applies a change set: whatever its template declares, IAM included"},
	{AWS, "ssm:StartAutomationExecution", Privilege, "runs an automation document with its assume role"},

	// AWS: name rules misfire.
	{AWS, "iam:SimulatePrincipalPolicy", Read, "evaluates a policy; changes nothing"},
	{AWS, "iam:SimulateCustomPolicy", Read, "evaluates a policy; changes nothing"},
	{AWS, "iam:GenerateCredentialReport", Read, "produces a report of key ages; no secrets"},
	{AWS, "iam:GenerateServiceLastAccessedDetails", Read, "starts a report job; no change"},
	{AWS, "iam:GenerateOrganizationsAccessReport", Read, "starts a report job; no change"},
	{AWS, "kms:Encrypt", Write, "encrypting reveals nothing"},
	{AWS, "kms:Verify", Read, "signature check; reveals nothing"},
	{AWS, "ec2:StopInstances", Write, "reversible; hold by pattern if needed"},
	{AWS, "ec2:RebootInstances", Write, "reversible"},

	// GCP: method IDs as in the discovery documents (service.resource....method).
	{GCP, "iam.projects.serviceAccounts.keys.create", Privilege, "mints a long-lived service account key"},
	{GCP, "iam.projects.serviceAccounts.keys.get", Read, "public key metadata only"},
	{GCP, "iamcredentials.projects.serviceAccounts.*", Privilege, "mints tokens or signs as the service account"},
	{GCP, "secretmanager.projects.secrets.versions.access", Privilege, "returns the secret"},
	{GCP, "cloudkms.projects.locations.keyRings.cryptoKeys.decrypt", Privilege, "returns plaintext"},
	{GCP, "cloudkms.projects.locations.keyRings.cryptoKeys.cryptoKeyVersions.asymmetricDecrypt", Privilege, "returns plaintext"},
	{GCP, "compute.instances.setMetadata", Privilege, "can add SSH keys and startup scripts"},
	{GCP, "compute.projects.setCommonInstanceMetadata", Privilege, "can add SSH keys on every instance"},
	{GCP, "compute.instances.setServiceAccount", Privilege, "gives an instance an identity"},
	{GCP, "storage.objects.get", Read, "data read; stays read"},
	{GCP, "sql.users.update", Privilege, "sets a database user's password"},
	{GCP, "sql.users.insert", Privilege, "creates a database login"},
	{GCP, "deploymentmanager.deployments.insert", Privilege, "creates whatever the configuration declares, IAM policies included"},
	{GCP, "deploymentmanager.deployments.update", Privilege, "changes whatever the configuration declares, IAM policies included"},
	{GCP, "deploymentmanager.deployments.patch", Privilege, "changes whatever the configuration declares, IAM policies included"},
	// GCP: IAM permission names, for callers that pass those instead of method IDs.
	{GCP, "iam.serviceAccountKeys.create", Privilege, "mints a long-lived service account key"},
	{GCP, "iam.serviceAccounts.actAs", Privilege, "lets a resource run as the service account"},

	// Azure.
	{Azure, "Microsoft.Compute/virtualMachines/runCommand/action", Privilege, "runs commands as root/SYSTEM"},
	{Azure, "Microsoft.Resources/deployments/write", Privilege, "an ARM deployment creates whatever its template declares, role assignments included"},
	{Azure, "Microsoft.Compute/virtualMachines/extensions/write", Privilege, "installs code that runs as root/SYSTEM"},
	{Azure, "Microsoft.KeyVault/vaults/secrets/getSecret/action", Privilege, "returns the secret"},
	{Azure, "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action", Privilege, "cluster admin credentials"},
	{Azure, "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action", Privilege, "cluster credentials"},
	{Azure, "Microsoft.Web/sites/config/list/action", Privilege, "returns app settings (connection strings, secrets)"},
	{Azure, "Microsoft.Web/sites/publishxml/action", Privilege, "returns deployment credentials"},
	{Azure, "Microsoft.KeyVault/locations/deletedVaults/purge/action", Destructive, "erases a soft-deleted vault for good: no recovery"},
	{Azure, "Microsoft.KeyVault/vaults/secrets/purge/action", Destructive, "erases a soft-deleted secret for good"},
	{Azure, "Microsoft.KeyVault/vaults/keys/purge/action", Destructive, "erases a soft-deleted key for good (data encrypted with it is lost)"},
	{Azure, "Microsoft.Compute/virtualMachines/deallocate/action", Destructive, "stops the VM and releases its dynamic IP and temporary disk"},
}

type exceptionIndex struct {
	exact    map[string]Risk // lower-cased full name
	prefixes []riskException // patterns ending in *
}

var exceptions = func() exceptionIndex {
	x := exceptionIndex{exact: map[string]Risk{}}
	for _, e := range riskExceptions {
		if strings.HasSuffix(e.Pattern, "*") {
			x.prefixes = append(x.prefixes, e)
			continue
		}
		x.exact[e.Cloud+" "+strings.ToLower(e.Pattern)] = e.Risk
	}
	return x
}()

// exceptionName is the name an exception pattern is written against.
func exceptionName(cloud, service, op string) string {
	switch cloud {
	case GCP:
		if strings.HasPrefix(op, service+".") {
			return op
		}
		return service + "." + op
	case Azure:
		return service + "/" + op
	}
	return service + ":" + op
}

func lookupException(cloud, service, op string) (Risk, bool) {
	name := strings.ToLower(exceptionName(cloud, service, op))
	if r, ok := exceptions.exact[cloud+" "+name]; ok {
		return r, true
	}
	for _, e := range exceptions.prefixes {
		if e.Cloud == cloud && strings.HasPrefix(name, strings.ToLower(strings.TrimSuffix(e.Pattern, "*"))) {
			return e.Risk, true
		}
	}
	return RiskUnknown, false
}

// RiskException describes one reviewed exception, for `airlock catalog show`.
type RiskException struct {
	Cloud, Pattern string
	Risk           Risk
	Why            string
}

// RiskExceptions lists the reviewed exceptions to the name rules.
func RiskExceptions() []RiskException {
	out := make([]RiskException, len(riskExceptions))
	for i, e := range riskExceptions {
		out[i] = RiskException(e)
	}
	return out
}

// RiskExceptionReason returns why an operation's default tier is an exception, or "".
func RiskExceptionReason(cloud, service, op string) string {
	name := strings.ToLower(exceptionName(cloud, service, op))
	for _, e := range riskExceptions {
		p := strings.ToLower(e.Pattern)
		if e.Cloud == cloud && (p == name || strings.HasSuffix(p, "*") && strings.HasPrefix(name, strings.TrimSuffix(p, "*"))) {
			return e.Why
		}
	}
	return ""
}
