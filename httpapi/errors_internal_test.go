package httpapi

import (
	"bytes"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pyng/receivables/api"
	"github.com/pyng/receivables/billing"
)

// Every error code of billing.Codes has an HTTP status, and is in the document's ErrorCode enum
// and in its error-code table with that status; the table and the enum hold no other code.
func TestEveryErrorCodeIsAnsweredAndDocumented(t *testing.T) {
	codes := billing.Codes()
	for _, code := range codes {
		status, ok := statusOf[code]
		if !ok {
			t.Errorf("%s has no HTTP status in statusOf", code)
			continue
		}
		if !bytes.Contains(api.OpenAPI, []byte("- '"+string(code)+"'")) {
			t.Errorf("%s (%d) is not in the ErrorCode enum of api/openapi.yaml", code, status)
		}
		suffix, _ := strings.CutPrefix(string(code), "urn:pyng:platform:billing:error:")
		if row := "| `" + suffix + "` | " + strconv.Itoa(status) + " |"; !bytes.Contains(api.OpenAPI, []byte(row)) {
			t.Errorf("the error-code table of api/openapi.yaml lacks the row %s", row)
		}
	}
	for code := range statusOf {
		if !slices.Contains(codes, code) {
			t.Errorf("statusOf answers %s, which is not in billing.Codes", code)
		}
	}
	enum := regexp.MustCompile(`\n\s+- '(urn:pyng:platform:billing:error:[^']*)'`)
	for _, m := range enum.FindAllSubmatch(api.OpenAPI, -1) {
		if code := billing.Code(m[1]); !slices.Contains(codes, code) {
			t.Errorf("the ErrorCode enum of api/openapi.yaml has %s, which is not in billing.Codes", code)
		}
	}
}
