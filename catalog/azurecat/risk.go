package azurecat

import "github.com/airlockhq/airlock/catalog"

// riskOf gives an operation its default tier from catalog.DefaultRisk.
func riskOf(namespace, operation string) catalog.Risk {
	return catalog.DefaultRisk(catalog.Azure, namespace, operation)
}
