package httpapi

import (
	"bytes"
	"testing"

	"github.com/pyng/receivables/api"
)

// Every code the API can answer is in the document's ErrorCode enum and error-code table.
func TestEveryErrorCodeIsDocumented(t *testing.T) {
	for code, status := range statusOf {
		if !bytes.Contains(api.OpenAPI, []byte("- '"+string(code)+"'")) {
			t.Errorf("%s (%d) is not in the ErrorCode enum of api/openapi.yaml", code, status)
		}
	}
}
