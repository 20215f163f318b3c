package authn

import (
	"fmt"
	"net/http"
)

// Error is a refused SigV4 request in AWS's own terms: Code is the AWS error code the aws CLI
// and SDKs recognise, Message is for the person running them, and Status is the HTTP status.
// The proxy renders it in the calling service's XML or JSON error format. Messages never
// contain a secret, a session token, a signature or a canonical request (which would carry
// the token).
type Error struct {
	Code    string
	Message string
	Status  int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// AWS error codes used by the SigV4 verifier.
const (
	CodeSignatureDoesNotMatch      = "SignatureDoesNotMatch"
	CodeIncompleteSignature        = "IncompleteSignature"
	CodeMissingAuthenticationToken = "MissingAuthenticationToken"
	CodeInvalidClientTokenID       = "InvalidClientTokenId"
	CodeExpiredToken               = "ExpiredToken"
	CodeRequestTimeTooSkewed       = "RequestTimeTooSkewed"
	CodeAccessDenied               = "AccessDenied"
	CodeContentSHA256Mismatch      = "XAmzContentSHA256Mismatch"
	CodeNotImplemented             = "NotImplemented"
	// CodeRequestEntityTooLarge refuses a body Airlock would have to buffer beyond its limit
	// to compute a payload hash the client did not declare.
	CodeRequestEntityTooLarge = "RequestEntityTooLarge"
	// CodeIncompleteBody is a body that ended before its declared length (client went away).
	CodeIncompleteBody = "IncompleteBody"
	// CodeMissingContentLength and CodeInvalidArgument refuse a chunk-signed upload without a
	// valid x-amz-decoded-content-length.
	CodeMissingContentLength = "MissingContentLength"
	CodeInvalidArgument      = "InvalidArgument"
)

func sigv4Err(code string, status int, format string, args ...any) Error {
	return Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

// refuse hands out a copy, so that a caller decorating the error cannot change the
// package's templates below.
func refuse(e Error) *Error { return &e }

func errIncomplete(format string, args ...any) *Error {
	return refuse(sigv4Err(CodeIncompleteSignature, http.StatusBadRequest, format, args...))
}

func errSignatureMismatch(format string, args ...any) *Error {
	return refuse(sigv4Err(CodeSignatureDoesNotMatch, http.StatusForbidden, format, args...))
}

var (
	errNoAuthentication = sigv4Err(CodeMissingAuthenticationToken, http.StatusForbidden,
		"Request is missing Authentication Token: sign it with the credentials from `airlock credentials aws`")
	errNoSessionToken = sigv4Err(CodeMissingAuthenticationToken, http.StatusForbidden,
		"The request carries no X-Amz-Security-Token: Airlock credentials always come with a session token; "+
			"use all three values from `airlock credentials aws`")
	errInvalidToken = sigv4Err(CodeInvalidClientTokenID, http.StatusForbidden,
		"The security token included in the request is invalid: it was not issued by this Airlock, "+
			"or it does not belong to the access key ID in the signature")
	errExpiredToken = sigv4Err(CodeExpiredToken, http.StatusForbidden,
		"The security token included in the request is expired: run `airlock credentials aws` again")
	errBadSignature = sigv4Err(CodeSignatureDoesNotMatch, http.StatusForbidden,
		"The request signature we calculated does not match the signature you provided. "+
			"Check your AWS Secret Access Key and signing method.")
	errPresignExpired = sigv4Err(CodeAccessDenied, http.StatusForbidden, "Request has expired")
	errBodyMismatch   = sigv4Err(CodeContentSHA256Mismatch, http.StatusBadRequest,
		"The provided 'x-amz-content-sha256' header does not match what was computed.")
	errChunkSigned = sigv4Err(CodeNotImplemented, http.StatusNotImplemented,
		"Chunk-signed uploads with Signature Version 4A (x-amz-content-sha256: STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD) "+
			"are not supported by Airlock; sign with SigV4 (STREAMING-AWS4-HMAC-SHA256-PAYLOAD is supported)")
	errSigV2 = sigv4Err(CodeNotImplemented, http.StatusNotImplemented,
		"Signature Version 2 is not supported by Airlock; sign with SigV4 (for `aws s3 presign` with aws-cli v1, "+
			"set `s3 =` / `signature_version = s3v4` in the profile)")
	errSigV4a = sigv4Err(CodeNotImplemented, http.StatusNotImplemented,
		"Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported by Airlock; sign with SigV4 (AWS4-HMAC-SHA256)")
)
