package gcpcat

import "github.com/airlockhq/airlock/catalog"

// riskOf gives a method its default tier from catalog.DefaultRisk. idPrefix is the first part
// of the method ID (sql for sqladmin), so that the reviewed exceptions, written against method
// IDs, apply.
func riskOf(idPrefix, operation string) catalog.Risk {
	return catalog.DefaultRisk(catalog.GCP, idPrefix, operation)
}
