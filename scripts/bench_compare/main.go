// Command bench_compare compares a GPU benchmark report (bench-gpu.json,
// written by make bench-gpu) with a baseline and fails when a figure got
// worse by more than a threshold:
//
//	go run ./scripts/bench_compare [-threshold 0.10] BASELINE.json NEW.json
//
// A report is {"device": ..., "metrics": [{"name", "value", "better"}]}
// where better is "lower" (times, memory) or "higher" (MFU, tokens/s). A
// figure is worse by (new−base)/base when lower is better and by
// (base−new)/base when higher is better. A baseline figure missing from the
// new report fails too; figures new in the report are listed.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

// Report is the part of bench-gpu.json compared here.
type Report struct {
	Device  string   `json:"device"`
	Metrics []Metric `json:"metrics"`
}

// Metric is one figure.
type Metric struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Better string  `json:"better"`
}

// Row is one compared figure.
type Row struct {
	Name      string
	Base, New float64
	Worse     float64 // fraction worse than the baseline (negative: better)
	Status    string  // "ok", "REGRESSED", "MISSING", "new"
}

func readReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, m := range r.Metrics {
		switch {
		case m.Name == "":
			return nil, fmt.Errorf("%s: metric %d has no name", path, i)
		case seen[m.Name]:
			return nil, fmt.Errorf("%s: metric %q appears twice", path, m.Name)
		case m.Better != "lower" && m.Better != "higher":
			return nil, fmt.Errorf("%s: metric %q: better is %q, want lower or higher", path, m.Name, m.Better)
		case !(m.Value > 0):
			return nil, fmt.Errorf("%s: metric %q: value %v is not positive", path, m.Name, m.Value)
		}
		seen[m.Name] = true
	}
	return &r, nil
}

// Compare lines up the baseline's figures with the new report's.
func Compare(base, cur *Report, threshold float64) (rows []Row, regressed bool) {
	now := map[string]Metric{}
	for _, m := range cur.Metrics {
		now[m.Name] = m
	}
	for _, b := range base.Metrics {
		n, ok := now[b.Name]
		if !ok {
			rows = append(rows, Row{Name: b.Name, Base: b.Value, Status: "MISSING"})
			regressed = true
			continue
		}
		delete(now, b.Name)
		worse := (n.Value - b.Value) / b.Value
		if b.Better == "higher" {
			worse = (b.Value - n.Value) / b.Value
		}
		st := "ok"
		if worse > threshold {
			st = "REGRESSED"
			regressed = true
		}
		rows = append(rows, Row{Name: b.Name, Base: b.Value, New: n.Value, Worse: worse, Status: st})
	}
	var extra []string
	for name := range now {
		extra = append(extra, name)
	}
	sort.Strings(extra)
	for _, name := range extra {
		rows = append(rows, Row{Name: name, New: now[name].Value, Status: "new"})
	}
	return rows, regressed
}

func write(w io.Writer, base, cur *Report, rows []Row, threshold float64) {
	fmt.Fprintf(w, "baseline: %s\nnew:      %s\n", base.Device, cur.Device)
	fmt.Fprintf(w, "%-44s %12s %12s %8s  %s\n", "figure", "baseline", "new", "worse", "")
	for _, r := range rows {
		switch r.Status {
		case "MISSING":
			fmt.Fprintf(w, "%-44s %12.4g %12s %8s  MISSING\n", r.Name, r.Base, "-", "")
		case "new":
			fmt.Fprintf(w, "%-44s %12s %12.4g %8s  new\n", r.Name, "-", r.New, "")
		default:
			fmt.Fprintf(w, "%-44s %12.4g %12.4g %7.1f%%  %s\n", r.Name, r.Base, r.New, 100*r.Worse, r.Status)
		}
	}
	fmt.Fprintf(w, "threshold: %.0f%% worse\n", 100*threshold)
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench_compare", flag.ContinueOnError)
	threshold := fs.Float64("threshold", 0.10, "fail when a figure is worse than the baseline by more than this fraction")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errors.New("usage: bench_compare [-threshold 0.10] BASELINE.json NEW.json")
	}
	base, err := readReport(fs.Arg(0))
	if err != nil {
		return err
	}
	cur, err := readReport(fs.Arg(1))
	if err != nil {
		return err
	}
	rows, regressed := Compare(base, cur, *threshold)
	write(stdout, base, cur, rows, *threshold)
	if regressed {
		return fmt.Errorf("figures regressed by more than %.0f%% against %s (or are missing)", 100**threshold, fs.Arg(0))
	}
	return nil
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench_compare:", err)
		os.Exit(1)
	}
}
