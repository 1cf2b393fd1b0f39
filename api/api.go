// Package api holds the OpenAPI 3.1 document of the partner API, the contract that the server
// serves at GET /openapi.yaml and that the HTTP tests check every response against.
package api

import _ "embed"

// OpenAPI is the document, in YAML.
//
//go:embed openapi.yaml
var OpenAPI []byte
