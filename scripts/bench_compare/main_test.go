package main

import (
	"bytes"
	"strings"
	"testing"
)

// Within 10%: times up to 9% slower, MFU 7.5% lower, memory 5% higher,
// improvements, and a figure the baseline lacks pass.
func TestWithinThreshold(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"testdata/base.json", "testdata/within.json"}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"kernel/rmsnorm/seconds", "9.0%  ok", "7.5%  ok", "-20.0%  ok", "kernel/new_kernel/seconds", "new"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// A time 20% slower, an MFU 25% lower and a figure gone each fail; an
// unchanged figure does not.
func TestRegressions(t *testing.T) {
	base, err := readReport("testdata/base.json")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := readReport("testdata/regressed.json")
	if err != nil {
		t.Fatal(err)
	}
	rows, regressed := Compare(base, cur, 0.10)
	if !regressed {
		t.Fatal("no regression found")
	}
	want := map[string]string{
		"kernel/rmsnorm/seconds":         "REGRESSED",
		"kernel/attention/seconds":       "ok",
		"model/bf16/mfu":                 "REGRESSED",
		"model/bf16/decode_tokens_per_s": "MISSING",
		"peak_memory_bytes":              "ok",
	}
	for _, r := range rows {
		if want[r.Name] != r.Status {
			t.Errorf("%s: %s, want %s", r.Name, r.Status, want[r.Name])
		}
		delete(want, r.Name)
	}
	if len(want) != 0 {
		t.Errorf("rows missing: %v", want)
	}
	var out bytes.Buffer
	if err := run([]string{"-threshold", "0.3", "testdata/base.json", "testdata/regressed.json"}, &out); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing figure passed with a 30%% threshold: %v", err)
	}
}

// Malformed reports are errors naming the file and the metric.
func TestBadReports(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"testdata/base.json", "testdata/bad.json"}, &out)
	if err == nil || !strings.Contains(err.Error(), `testdata/bad.json: metric "a": better is "faster"`) {
		t.Errorf("bad report: %v", err)
	}
	if err := run([]string{"testdata/base.json"}, &out); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("one argument: %v", err)
	}
	if err := run([]string{"testdata/base.json", "testdata/none.json"}, &out); err == nil {
		t.Error("a missing file passed")
	}
}
