// Package awsmodel reads the AWS SDK's service models and endpoint table and reduces them to the
// compact Table that awscat embeds. It is shared by the generator (which writes the table) and by
// awscat's staleness test (which rebuilds it and compares), so both see one definition.
package awsmodel

// Table is everything awscat needs from the SDK models, in a stable order.
type Table struct {
	// SDK is the module version the table was built from.
	SDK string `json:"sdk"`
	// InputSHA256 hashes the model files read (InputHash), for a cheap staleness check.
	InputSHA256 string      `json:"input_sha256"`
	Services    []Service   `json:"services"`
	Partitions  []Partition `json:"partitions"`
}

// Service is one model (models/apis/<Model>/<version>/api-2.json).
type Service struct {
	Model          string `json:"model"` // directory name, unique
	ID             string `json:"id"`    // metadata.serviceId
	APIVersion     string `json:"ver"`
	EndpointPrefix string `json:"ep"`
	SigningName    string `json:"sn"`
	IAMPrefix      string `json:"iam"`
	Protocol       string `json:"proto"` // query, ec2, json, rest-json, rest-xml
	TargetPrefix   string `json:"tp,omitempty"`
	JSONVersion    string `json:"jv,omitempty"`
	GlobalEndpoint string `json:"ge,omitempty"`
	Ops            []Op   `json:"ops"`
}

// Op is one operation of a service.
type Op struct {
	Name string `json:"n"`
	// IAMName is the IAM action name when it is not Name (s3 ListObjectsV2 → ListBucket).
	IAMName string `json:"iam,omitempty"`
	Method  string `json:"m"`
	URI     string `json:"u"` // requestUri template, with its literal query part
	// Deprecated operations lose ties with the current operation of the same wire shape
	// (s3 GetBucketLifecycle vs GetBucketLifecycleConfiguration).
	Deprecated bool `json:"dep,omitempty"`
	// HostPrefix is the operation's endpoint host prefix ("{AccountId}.", "data.").
	HostPrefix string `json:"hp,omitempty"`
	// URIMembers binds URI labels to input members: [label, member], only where they differ.
	URIMembers [][2]string `json:"ub,omitempty"`
	// QueryMembers binds querystring parameters to input members: [parameter, member].
	QueryMembers [][2]string `json:"qb,omitempty"`
	// ReqQuery and ReqHeader are querystring parameters and headers of required members:
	// they tell apart operations that share a method and URI template (s3 PutObject/CopyObject).
	ReqQuery  []string `json:"rq,omitempty"`
	ReqHeader []string `json:"rh,omitempty"`
	// Resource lists the wire names of members that identify the resource acted on, best first:
	// URI labels for rest protocols, body members for json, parameter names for query/ec2.
	Resource []string `json:"r,omitempty"`
}

// Partition is one partition of endpoints.json with every service's hostnames resolved.
type Partition struct {
	ID          string   `json:"id"`
	DNSSuffix   string   `json:"dns"`
	RegionRegex string   `json:"rx"`
	Regions     []string `json:"regions"`
	// Hostname is the partition's default pattern, "{service}.{region}.{dnsSuffix}".
	Hostname string             `json:"host"`
	Services []PartitionService `json:"services"`
}

// PartitionService is one endpoint prefix in a partition.
type PartitionService struct {
	EndpointPrefix string `json:"ep"`
	// Hostname is the service's default pattern when it differs from the partition's.
	Hostname string `json:"host,omitempty"`
	// Global is the partition endpoint key ("aws-global") of a non-regionalized service.
	Global    string     `json:"global,omitempty"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint is one resolved hostname.
type Endpoint struct {
	Key          string `json:"k"` // region or pseudo-region (aws-global)
	Host         string `json:"h"`
	ScopeRegion  string `json:"sr,omitempty"` // credentialScope.region when it differs from Key
	ScopeService string `json:"ss,omitempty"` // credentialScope.service
}
