// Package awscat names AWS API calls: it turns an HTTP request of any AWS protocol (query, ec2,
// json, rest-json, rest-xml) into a catalog.Action such as ec2:TerminateInstances with its
// resource, and it owns the table of real AWS hostnames that the proxy may forward to.
//
// Everything comes from one table generated from the aws-sdk-go models (table.json.gz); the
// indexes over it are built once, on first use.
package awscat

//go:generate go run ./internal/gen -out table.json.gz

import (
	_ "embed"
	"sync"

	"github.com/airlockhq/airlock/catalog/awscat/internal/awsmodel"
)

//go:embed table.json.gz
var tableData []byte

// loadIndex decodes the table and builds the indexes on first use (tens of milliseconds).
var loadIndex = onceIndex()

func onceIndex() func() *index {
	return sync.OnceValue(func() *index {
		t, err := awsmodel.Decode(tableData)
		if err != nil {
			// The table is embedded and checked by tests; a broken one is a build defect.
			panic("awscat: embedded table: " + err.Error())
		}
		return buildIndex(t)
	})
}
