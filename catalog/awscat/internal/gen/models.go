//go:build tools

package main

// The generator reads aws-sdk-go's service models from the module cache, never its code. This
// import, excluded from every build by the tag, keeps the module (at the version the table was
// generated from) in go.mod when `go mod tidy` runs.
import _ "github.com/aws/aws-sdk-go/aws"
