package gcpcat

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/airlockhq/airlock/catalog"
)

// Cloud Storage also serves its XML API on storage.googleapis.com, path-style: /BUCKET/OBJECT.
// No discovery document describes it, yet cloud.google.com/go/storage reads objects there by
// default and S3-interoperable tools use it for everything. Written by hand because there is
// no model of the XML API to generate from: it names the bucket and object calls below with the
// JSON API's method IDs (so one policy covers both APIs), and leaves every other sub-resource
// or parameter (acl, compose, tagging, signed-URL parameters, ...) Unknown.

// jsonAPIRoots are first path segments that belong to the JSON API on storage.googleapis.com;
// Google routes them there, so they never name a bucket in the XML API.
var jsonAPIRoots = map[string]bool{"storage": true, "upload": true, "download": true, "batch": true, "resumable": true}

// XML API query parameters that do not change what a call does.
var (
	xmlListParams = map[string]bool{"prefix": true, "delimiter": true, "marker": true, "max-keys": true, "list-type": true,
		"continuation-token": true, "start-after": true, "fetch-owner": true, "encoding-type": true, "versions": true}
	xmlGetParams = map[string]bool{"generation": true, "response-content-type": true, "response-content-disposition": true,
		"response-cache-control": true, "response-content-encoding": true, "response-content-language": true, "response-expires": true}
	// Bucket configuration that GET reads (storage.buckets.get); any other method on them is Unknown.
	xmlBucketConfig = map[string]bool{"location": true, "storageClass": true, "versioning": true, "billing": true,
		"cors": true, "lifecycle": true, "logging": true, "website": true, "encryption": true}
)

// nameStorageXML names a path-style XML API call; ok is false when it is not one it can name.
func nameStorageXML(r Request, location string) (catalog.Action, bool) {
	bucket, object, _ := strings.Cut(strings.TrimPrefix(r.Path, "/"), "/")
	if jsonAPIRoots[bucket] {
		return catalog.Action{}, false
	}
	q, err := url.ParseQuery(r.RawQuery)
	if err != nil {
		return catalog.Action{}, false
	}
	only := func(allowed ...map[string]bool) bool {
		for k := range q {
			ok := false
			for _, a := range allowed {
				ok = ok || a[k]
			}
			if !ok {
				return false
			}
		}
		return true
	}
	has := func(k string) bool { _, ok := q[k]; return ok }
	name := func(id string) (catalog.Action, bool) {
		op, ok := Lookup(id)
		if !ok {
			return catalog.Action{}, false
		}
		return catalog.Action{Cloud: catalog.GCP, Service: op.Service, Operation: op.Operation, IAMAction: op.IAMAction,
			Region: location, Risk: op.Risk, Known: true}, true
	}
	if bucket == "" {
		if r.Method == http.MethodGet && len(q) == 0 {
			a, ok := name("storage.buckets.list")
			a.Account = r.Header.Get("X-Goog-Project-Id")
			return a, ok
		}
		return catalog.Action{}, false
	}
	b, err := url.PathUnescape(bucket)
	if err != nil || !validBucket(b) {
		return catalog.Action{}, false
	}
	bucketRes := "projects/_/buckets/" + b

	if object == "" {
		var a catalog.Action
		var ok bool
		switch {
		case r.Method == http.MethodGet && len(q) == 1 && xmlBucketConfig[firstKey(q)] && q.Get(firstKey(q)) == "":
			a, ok = name("storage.buckets.get")
		case r.Method == http.MethodGet && (only(xmlListParams) || (has("uploads") && only(xmlListParams, map[string]bool{"uploads": true}))):
			a, ok = name("storage.objects.list")
		case r.Method == http.MethodHead && len(q) == 0:
			a, ok = name("storage.buckets.get")
		case r.Method == http.MethodPut && len(q) == 0:
			a, ok = name("storage.buckets.insert")
			a.Account = r.Header.Get("X-Goog-Project-Id")
		case r.Method == http.MethodDelete && len(q) == 0:
			a, ok = name("storage.buckets.delete")
		}
		a.Resource = bucketRes
		xmlCannedACL(&a, r.Header)
		return a, ok
	}
	o, err := url.PathUnescape(object)
	if err != nil || o == "" {
		return catalog.Action{}, false
	}
	objectRes := bucketRes + "/objects/" + o
	upload := map[string]bool{"uploadId": true, "partNumber": true, "upload_id": true, "uploads": true}
	var a catalog.Action
	var ok bool
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case only(xmlGetParams):
			a, ok = name("storage.objects.get")
			a.Resource = objectRes
		case has("uploadId") && only(upload): // the parts of a multipart upload
			a, ok = name("storage.objects.insert")
			a.Resource = bucketRes
		}
	case http.MethodPut:
		goog, amz := r.Header.Values("X-Goog-Copy-Source"), r.Header.Values("X-Amz-Copy-Source")
		switch {
		case len(goog)+len(amz) > 0:
			// A copy reads its source, which the name must show: one source, and no upload
			// parameters (there is no part copy to name).
			if len(q) != 0 || len(goog)+len(amz) != 1 {
				return catalog.Action{}, false
			}
			src := goog
			if len(src) == 0 {
				src = amz
			}
			res, valid := copySource(src[0])
			if !valid {
				return catalog.Action{}, false
			}
			// As the JSON API's objects.copy is named: the object written, reading the source.
			a, ok = name("storage.objects.copy")
			a.Resource = objectRes
			a.ReadsFrom(res, "storage.objects.get")
		case len(q) == 0, has("upload_id") && only(upload), has("partNumber") && has("uploadId") && only(upload):
			a, ok = name("storage.objects.insert")
			a.Resource = bucketRes
		}
	case http.MethodPost:
		// Start (x-goog-resumable: start, or ?uploads) and complete (?uploadId) an upload.
		if (len(q) == 0 && strings.EqualFold(r.Header.Get("X-Goog-Resumable"), "start")) ||
			((has("uploads") || has("uploadId")) && len(q) == 1) {
			a, ok = name("storage.objects.insert")
			a.Resource = bucketRes
		}
	case http.MethodDelete:
		switch {
		case only(map[string]bool{"generation": true}):
			a, ok = name("storage.objects.delete")
			a.Resource = objectRes
		case (has("uploadId") || has("upload_id")) && len(q) == 1: // abort an upload
			a, ok = name("storage.objects.insert")
			a.Resource = bucketRes
		}
	}
	xmlCannedACL(&a, r.Header)
	return a, ok
}

// xmlCannedACL adds the ACL change a write makes with x-goog-acl (public-read, say), as
// predefinedAcl does in the JSON API.
func xmlCannedACL(a *catalog.Action, h http.Header) {
	if len(h.Values("X-Goog-Acl")) == 0 {
		return
	}
	switch a.IAMAction {
	case "storage.objects.insert", "storage.objects.copy":
		a.Also = append(a.Also, catalog.Permission{Action: "storage.objects.setIamPolicy", Resource: a.Resource})
	case "storage.buckets.insert":
		a.Also = append(a.Also, catalog.Permission{Action: "storage.buckets.setIamPolicy", Resource: a.Resource})
	}
}

func firstKey(q url.Values) string {
	for k := range q {
		return k
	}
	return ""
}

// copySource parses x-goog-copy-source (/bucket/object, the object URL-escaped) into the
// source's resource name.
func copySource(s string) (string, bool) {
	b, o, ok := strings.Cut(strings.TrimPrefix(s, "/"), "/")
	if !ok || !validBucket(b) {
		return "", false
	}
	if i := strings.Index(o, "?"); i >= 0 { // ?versionId= / ?generation= of the source
		o = o[:i]
	}
	obj, err := url.PathUnescape(o)
	if err != nil || obj == "" {
		return "", false
	}
	return "projects/_/buckets/" + b + "/objects/" + obj, true
}

// validBucket checks Cloud Storage's bucket name characters and length (3-222; dots allowed).
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 222 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
