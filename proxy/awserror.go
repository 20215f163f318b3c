package proxy

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
)

// cloudError is an error that reaches the client in its cloud's own format. Every refusal the
// pipeline makes is one of these; the text is written once here per format.
type cloudError struct {
	Status  int
	Code    string // AWS error code, e.g. AccessDenied
	Message string
	// Retryable adds a Retry-After hint (e.g. the store or audit sink is unavailable).
	Retryable bool
}

func (e *cloudError) Error() string { return e.Code + ": " + e.Message }

// awsProtocol is the wire protocol family that decides the error body's shape.
type awsProtocol int

const (
	// protoUnknown: not known yet; errors guess it from the request (callProtocol).
	protoUnknown awsProtocol = iota
	protoXML                 // query protocol (IAM, STS, ...): <ErrorResponse>
	protoEC2                 // EC2 query: <Response><Errors>
	protoS3                  // rest-xml (S3, Route 53, CloudFront): <Error>
	protoJSON                // JSON 1.0/1.1 (X-Amz-Target): {"__type": ...}
	protoREST                // rest-json: {"message": ...} + X-Amzn-ErrorType
)

// guessAWSProtocol picks the error format from the request alone, before (or without) the
// catalog: the SDKs parse errors by their service's protocol, so this must be right for the
// aws CLI to print a readable message.
func guessAWSProtocol(r *http.Request, service, catalogProtocol string) awsProtocol {
	switch catalogProtocol {
	case "ec2":
		return protoEC2
	case "query":
		return protoXML
	case "rest-xml":
		return protoS3
	case "json":
		return protoJSON
	case "rest-json":
		return protoREST
	}
	switch {
	case r.Header.Get("X-Amz-Target") != "":
		return protoJSON
	case service == "ec2":
		return protoEC2
	case service == "s3" || service == "route53" || service == "cloudfront":
		return protoS3
	case strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"),
		r.URL.RawQuery != "" && r.URL.Query().Get("Action") != "":
		return protoXML
	}
	return protoREST
}

// callProtocol is the call's protocol as the catalog named it, or else as the request looks.
// Guessing is left to the error path: an allowed call never needs it.
func callProtocol(c *call) awsProtocol {
	if c.protocol != protoUnknown {
		return c.protocol
	}
	service := ""
	if c.sig != nil {
		service = c.sig.Service
	}
	return guessAWSProtocol(c.r, service, "")
}

// writeAWSError renders e as the SDKs expect for the protocol.
func writeAWSError(w http.ResponseWriter, proto awsProtocol, requestID string, e *cloudError) {
	h := w.Header()
	h.Set("X-Amzn-RequestId", requestID)
	h.Set("X-Amz-Request-Id", requestID)
	if e.Retryable {
		h.Set("Retry-After", "1")
	}
	var body []byte
	switch proto {
	case protoJSON, protoREST:
		h.Set("Content-Type", "application/x-amz-json-1.1")
		h.Set("X-Amzn-ErrorType", e.Code)
		body, _ = json.Marshal(struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}{e.Code, e.Message})
	case protoEC2:
		h.Set("Content-Type", "text/xml")
		body = xmlBody(struct {
			XMLName   xml.Name `xml:"Response"`
			Code      string   `xml:"Errors>Error>Code"`
			Message   string   `xml:"Errors>Error>Message"`
			RequestID string   `xml:"RequestID"`
		}{Code: e.Code, Message: e.Message, RequestID: requestID})
	case protoS3:
		h.Set("Content-Type", "application/xml")
		body = xmlBody(struct {
			XMLName   xml.Name `xml:"Error"`
			Code      string   `xml:"Code"`
			Message   string   `xml:"Message"`
			RequestID string   `xml:"RequestId"`
		}{Code: e.Code, Message: e.Message, RequestID: requestID})
	default:
		h.Set("Content-Type", "text/xml")
		typ := "Sender"
		if e.Status >= 500 {
			typ = "Receiver"
		}
		body = xmlBody(struct {
			XMLName   xml.Name `xml:"ErrorResponse"`
			Type      string   `xml:"Error>Type"`
			Code      string   `xml:"Error>Code"`
			Message   string   `xml:"Error>Message"`
			RequestID string   `xml:"RequestId"`
		}{Type: typ, Code: e.Code, Message: e.Message, RequestID: requestID})
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

func xmlBody(v any) []byte {
	b, err := xml.Marshal(v)
	if err != nil {
		return []byte(xml.Header + "<Error><Code>InternalError</Code></Error>")
	}
	return append([]byte(xml.Header), b...)
}
