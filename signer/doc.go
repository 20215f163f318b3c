// Package signer owns the credentials Airlock forwards calls with: per-cloud brokers that mint
// short-lived credentials (AWS STS AssumeRole, GCP service-account impersonation, Azure AD
// tokens), the encrypted credential cache they share across replicas, and the re-signing of an
// AWS request with minted credentials. It knows nothing of policy: callers decide, then ask.
package signer
