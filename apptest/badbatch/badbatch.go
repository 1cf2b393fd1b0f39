// Package badbatch builds hostile batch submissions: well-formed JSON objects of up to a given
// size that hold as many problems, or as much work for a reader, as fit. The HTTP tests check
// that each is answered small, and pyng-bench that each is answered fast.
package badbatch

import (
	"bytes"
	"fmt"
	"strings"
)

// Body is one hostile submission.
type Body struct {
	Name string
	JSON []byte
}

// Bodies returns one body of each shape, each of at most limit bytes (and close to it).
func Bodies(limit int) []Body {
	return []Body{
		{"rows of the wrong type", fill(limit, `{"batchReference":"X","rows":[`, "1", ",", `]}`)},
		{"rows without members", fill(limit, `{"batchReference":"X","rows":[`, "{}", ",", `]}`)},
		{"1000 rows of unknown members", rows(limit, func(i, size int) string {
			return debit(i, "R", 100, names(size, func(j int) string { return fmt.Sprintf(`"u%d":0`, j) }))
		})},
		{"1000 rows of escaped unknown names", rows(limit, func(i, size int) string {
			return debit(i, "R", 100, names(size, func(j int) string { return fmt.Sprintf(`"\u0075%d":0`, j) }))
		})},
		{"1000 rows of one long unknown name", rows(limit, func(i, size int) string {
			return debit(i, "R", 100, `"`+strings.Repeat("n", max(size-75, 1))+`":0`)
		})},
		{"rows of 64 members", fill(limit, `{"batchReference":"X","rows":[`, "", ",", `]}`, func(int) string { return members64 })},
		{"unknown members of the batch", fill(limit, `{"batchReference":"X","rows":[{"rowReference":"R","customerReference":"C","amount":1}]`,
			"", "", "}", func(j int) string { return fmt.Sprintf(`,"m%d":0`, j) })},
		{"row-like members of the batch", fill(limit, `{"batchReference":"X","rows":[{"rowReference":"R","customerReference":"C","amount":1}]`,
			"", "", "}", func(j int) string { return fmt.Sprintf(`,"rows[%d].x":0`, 999-j) })},
		{"1000 rows of deeply nested values", rows(limit, func(i, size int) string {
			depth := max((size-60)/2, 1)
			return fmt.Sprintf(`{"rowReference":"R%d","customerReference":"C","amount":%s%s}`, i,
				strings.Repeat("[", depth), strings.Repeat("]", depth))
		})},
		{"1000 rows of long strings", rows(limit, func(i, size int) string {
			long := strings.Repeat("s", max((size-60)/2, 1))
			return fmt.Sprintf(`{"rowReference":"%s","customerReference":"%s","amount":0}`, long, long)
		})},
		{"a long batchReference", fill(limit, `{"rows":[],"batchReference":"`, "b", "", `"}`)},
		{"1000 rows of one rowReference", rows(limit, func(i, size int) string {
			return debit(0, strings.Repeat("D", 63), 100, "")
		})},
		{"1000 rows of every field wrong", rows(limit, func(i, size int) string {
			return `{"rowReference":1,"customerReference":{},"amount":"x",` +
				names(size-60, func(j int) string { return fmt.Sprintf(`"w%d":[]`, j) }) + "}"
		})},
	}
}

// members64 is an object of as many members as a JSON reader compares one by one (to find a
// repeated name) before it takes to a hash table: names alike but for their last characters.
var members64 = func() string {
	var b strings.Builder
	b.WriteString("{")
	for j := range 64 {
		if j > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"%s%02d":0`, strings.Repeat("m", 12), j)
	}
	return b.String() + "}"
}()

// fill repeats item (each given its index by each, if any) between head and tail, separated by
// sep, while the whole stays within limit.
func fill(limit int, head, item, sep, tail string, each ...func(int) string) []byte {
	var b bytes.Buffer
	b.WriteString(head)
	for i := 0; ; i++ {
		next := item
		if len(each) > 0 {
			next = each[0](i)
		}
		if i > 0 {
			next = sep + next
		}
		if b.Len()+len(next)+len(tail) > limit {
			break
		}
		b.WriteString(next)
	}
	b.WriteString(tail)
	return b.Bytes()
}

// rows is a batch of 1000 rows, each made by row to take about its share of limit, and padded
// with spaces to take it all.
func rows(limit int, row func(i, size int) string) []byte {
	const n = 1000
	size := (limit-100)/n - 1
	var b bytes.Buffer
	b.WriteString(`{"batchReference":"X","rows":[`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		r := row(i, size)
		b.WriteString(r + strings.Repeat(" ", max(size-len(r), 0)))
	}
	b.WriteString("]}")
	if b.Len() > limit {
		panic(fmt.Sprintf("badbatch: a body of %d bytes, over %d", b.Len(), limit))
	}
	return b.Bytes()
}

// debit is a row object with the given members and extra members after them.
func debit(i int, ref string, amount int, extra string) string {
	row := fmt.Sprintf(`{"rowReference":"%s%d","customerReference":"C","amount":%d`, ref, i, amount)
	if extra != "" {
		row += "," + extra
	}
	return row + "}"
}

// names joins the members member(0), member(1)... as long as they fit in size bytes after the
// row's own members.
func names(size int, member func(j int) string) string {
	var b strings.Builder
	for j := 0; ; j++ {
		next := member(j)
		if j > 0 {
			next = "," + next
		}
		if b.Len()+len(next) > size-70 {
			break
		}
		b.WriteString(next)
	}
	return b.String()
}
