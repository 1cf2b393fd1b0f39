package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/pyng/receivables/billing"
)

// maxBodyBytes bounds every request body (413 beyond) but a batch's, which decodeJSONUpTo bounds.
const maxBodyBytes = 64 << 10

// body says whether a request body is required.
type body int

const (
	bodyRequired body = iota
	// bodyOptional: an empty body is taken as {}, and needs no Content-Type.
	bodyOptional
)

// decodeJSON reads the request body, a JSON object, into dst, the one way every JSON endpoint
// does it: at most maxBodyBytes (413), Content-Type application/json and no content coding (415), well-formed UTF-8
// JSON with no trailing data and no repeated member (400 malformed-json), a JSON object, member
// names exactly as documented (400 unknown-field, with the field as target), values of the
// documented types (400 invalid-field, with the field as target). A JSON null leaves the field
// unset. Targets name nested fields as in rows[3].amount.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any, need body) error {
	return decodeJSONUpTo(w, r, dst, need, maxBodyBytes)
}

// decodeJSONUpTo is decodeJSON for a body of at most limit bytes, with the decoding options opts
// besides.
func decodeJSONUpTo(w http.ResponseWriter, r *http.Request, dst any, need body, limit int64, opts ...json.Options) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return billing.Errorf(billing.CodeBodyTooLarge, "", "The request body must not exceed "+byteSize(limit)+".")
	}
	if err != nil {
		// The body ended before its Content-Length or stopped arriving until the read timeout:
		// the client's failure, not ours (and when it has gone, no one reads the answer).
		return billing.Errorf(billing.CodeMalformedJSON, "",
			"The request body did not arrive whole: it ended before its Content-Length, or came too slowly.")
	}
	data = bytes.TrimSpace(data)
	if need == bodyOptional && len(data) == 0 {
		return nil
	}
	if coded(r.Header.Values("Content-Encoding")) {
		// RFC 9110 §12.5.3: the answer says which codings the server reads, none but identity.
		w.Header().Set("Accept-Encoding", "identity")
		return billing.Errorf(billing.CodeUnsupportedMediaType, "Content-Encoding",
			"Send the request body uncompressed, without Content-Encoding: this API reads no content coding.")
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		return billing.Errorf(billing.CodeUnsupportedMediaType, "Content-Type",
			"Send the request body as JSON, with Content-Type: application/json.")
	}
	opts = append([]json.Options{json.RejectUnknownMembers(true)}, opts...)
	err = json.Unmarshal(data, dst, opts...)
	if err != nil {
		// The decoder stops at the first problem it meets, which may be a member's (unknown, or of
		// the wrong type) before the body turns out not to be JSON at all: such a body is answered
		// as malformed, not as a problem of a member the partner would then fix in vain.
		if whole := json.Unmarshal(data, new(jsontext.Value), opts...); whole != nil {
			err = whole
		}
	}
	return decodeError(data, err)
}

// decodeError is the error of decoding the request body data, err (nil when err is).
func decodeError(data []byte, err error) error {
	var syntax *jsontext.SyntacticError
	var semantic *json.SemanticError
	switch {
	case errors.As(err, &syntax):
		return billing.Errorf(billing.CodeMalformedJSON, "",
			fmt.Sprintf("The request body is not well-formed JSON: %v (at byte %d).", syntax.Err, syntax.ByteOffset))
	case len(data) == 0 || data[0] != '{' || (errors.As(err, &semantic) && semantic.JSONPointer == ""):
		return billing.Errorf(billing.CodeMalformedJSON, "", "The request body must be a JSON object.")
	case errors.As(err, &semantic) && errors.Is(semantic.Err, json.ErrUnknownName):
		target := fieldPath(semantic.JSONPointer)
		return billing.Errorf(billing.CodeUnknownField, target, target+" is not a field of this request.")
	case errors.As(err, &semantic):
		target := fieldPath(semantic.JSONPointer)
		return billing.Errorf(billing.CodeInvalidField, target, target+" must be "+kindOf(semantic.GoType)+".")
	case err != nil:
		return fmt.Errorf("decode request body: %w", err)
	}
	return nil
}

// byteSize writes a body limit for people: 64 KiB, 1 MiB.
func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// isJSON reports whether a Content-Type is JSON in UTF-8, the only encoding JSON has (RFC 8259).
func isJSON(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return false
	}
	charset, ok := params["charset"]
	return !ok || strings.EqualFold(charset, "utf-8")
}

// coded reports whether Content-Encoding names a content coding (gzip, br...): the body is then
// not the JSON it would be read as, and a plain body that claims one is not what it says either.
// identity is no coding.
func coded(contentEncoding []string) bool {
	for _, value := range contentEncoding {
		for coding := range strings.SplitSeq(value, ",") {
			if coding = strings.TrimSpace(coding); coding != "" && !strings.EqualFold(coding, "identity") {
				return true
			}
		}
	}
	return false
}

// fieldPath turns a JSON pointer into a field path: /rows/3/amount → rows[3].amount. A long name
// is quoted cut.
func fieldPath(p jsontext.Pointer) string {
	var b strings.Builder
	for token := range p.Tokens() {
		if _, err := strconv.Atoi(token); err == nil {
			b.WriteString("[" + billing.Quoted(token) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(billing.Quoted(token))
	}
	return b.String()
}

// kindOf names the JSON kind a Go type is decoded from, for error messages.
func kindOf(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "of another type"
}
