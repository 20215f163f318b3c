package proxy

import "net/http"

// Router sends cloud traffic to the pipeline and everything else to the API and pages. The
// choice is made on how the request is authenticated, never on its path: an S3 bucket named
// "api" or "requests" is still S3. Cloud traffic is signed with AWS SigV4 or carries an
// Airlock-issued bearer token (GCP, Azure).
func Router(aws http.Handler, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsAWSRequest(r) || IsBearerRequest(r) {
			aws.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}
