package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/catalog"
)

// The pipeline's refusals in Google's and Azure Resource Manager's own JSON error formats, so
// that gcloud, az and the SDKs print Airlock's message as they would the cloud's.

// gcpStatus is the google.rpc.Code name Google pairs with an HTTP status.
func gcpStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "ABORTED"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	return "INTERNAL"
}

// writeGCPError renders e as a Google API error: {"error": {code, message, status, details}}.
// The details carry a google.rpc.ErrorInfo whose metadata has the request ID and, for a held
// call, the approval request and its URL, for tools that read details rather than the message.
func writeGCPError(w http.ResponseWriter, requestID string, held *approval.Request, e *cloudError) {
	meta := map[string]string{"request_id": requestID}
	reason := upperSnake(e.Code)
	if held != nil && e.Status == http.StatusForbidden {
		reason = "APPROVAL_REQUIRED"
		if held.State == approval.StateDenied {
			reason = "APPROVAL_DENIED"
		}
		meta["approval_request"] = held.ID
		meta["approval_url"] = held.URL
		meta["approval_state"] = string(held.State)
	}
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code":    e.Status,
		"message": e.Message,
		"status":  gcpStatus(e.Status),
		"details": []any{map[string]any{
			"@type":    "type.googleapis.com/google.rpc.ErrorInfo",
			"reason":   reason,
			"domain":   "airlock",
			"metadata": meta,
		}},
	}})
	h := w.Header()
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="airlock", error="invalid_token"`)
	}
	writeJSONError(w, requestID, e, body)
}

// azureCode is the ARM error code for e: the pipeline's shared refusals carry AWS-style codes,
// which become ARM's; codes written for Azure pass through.
func azureCode(e *cloudError) string {
	switch e.Code {
	case "AccessDenied":
		return "AuthorizationFailed"
	case "InternalFailure":
		return "InternalServerError"
	}
	return e.Code
}

// writeAzureError renders e as an ARM error: {"error": {"code", "message"}} with the code also
// in x-ms-error-code, as ARM sends it.
func writeAzureError(w http.ResponseWriter, requestID string, e *cloudError) {
	code := azureCode(e)
	body, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": e.Message}})
	h := w.Header()
	h.Set("x-ms-request-id", requestID)
	h.Set("x-ms-error-code", code)
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+strings.ReplaceAll(e.Message, `"`, "'")+`"`)
	}
	writeJSONError(w, requestID, e, body)
}

func writeJSONError(w http.ResponseWriter, requestID string, e *cloudError, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=UTF-8")
	h.Set("X-Airlock-Request-Id", requestID)
	if e.Retryable {
		h.Set("Retry-After", "1")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// writeCloudError writes e in the format of the call's cloud.
func writeCloudError(w http.ResponseWriter, c *call, e *cloudError) {
	switch c.cloud {
	case catalog.GCP:
		writeGCPError(w, c.id, c.held, e)
	case catalog.Azure:
		writeAzureError(w, c.id, e)
	default:
		writeAWSError(w, callProtocol(c), c.id, e)
	}
}

// upperSnake turns an error code (AccessDenied) into ErrorInfo's reason style (ACCESS_DENIED).
func upperSnake(code string) string {
	var b strings.Builder
	for i, r := range code {
		if unicode.IsUpper(r) && i > 0 {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}
