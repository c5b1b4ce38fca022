// Package metrics is the format of a run's metrics.jsonl: one JSON object
// per step, {"step": N, "name": value, ...} with sorted keys, non-finite
// values written as null. The trainer writes it; plots and tests read it.
package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Line renders one step's metrics as a JSON object (without a newline).
func Line(step int, m map[string]float64) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"step":%d`, step)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		ks, _ := json.Marshal(k)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			fmt.Fprintf(&b, ",%s:null", ks)
			continue
		}
		fmt.Fprintf(&b, ",%s:%s", ks, strconv.FormatFloat(v, 'g', -1, 64))
	}
	b.WriteByte('}')
	return b.String()
}

// Read parses a metrics.jsonl file: one map per non-blank line, null
// values read as NaN. A malformed line is an error naming the file and
// line.
func Read(path string) ([]map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	defer f.Close()
	var out []map[string]float64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var raw map[string]*float64
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		m := make(map[string]float64, len(raw))
		for k, v := range raw {
			if v == nil {
				m[k] = math.NaN()
			} else {
				m[k] = *v
			}
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics %s: %w", path, err)
	}
	return out, nil
}
