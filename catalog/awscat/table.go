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
