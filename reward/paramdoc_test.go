package reward

import (
	"errors"
	"strings"
	"testing"
)

func TestParamsDocAndCheck(t *testing.T) {
	ps, ok := Params("math_answer")
	if !ok {
		t.Fatal("math_answer is not registered")
	}
	got := map[string]ParamInfo{}
	for _, p := range ps {
		got[p.Key] = p
	}
	if p := got["extract"]; p.Type != "list of strings" || !strings.Contains(p.Default, "hash") {
		t.Errorf("extract: %+v", p)
	}
	if p := got["correct"]; p.Type != "number" || p.Default != "1" {
		t.Errorf("correct: %+v", p)
	}
	doc := ParamsDoc()
	for _, td := range Types() {
		if !strings.Contains(doc, "### `"+td[0]+"`") {
			t.Errorf("ParamsDoc lacks %s", td[0])
		}
	}

	err := CheckParams("math_answer", map[string]any{"extrct": []any{"hash"}})
	var pe *ParamError
	if !errors.As(err, &pe) || pe.Key != "extrct" || !strings.Contains(pe.Msg, `did you mean "extract"?`) {
		t.Fatalf("misspelt param: %v", err)
	}
	if err := CheckParams("math_answer", map[string]any{"zzzzzzzz": 1}); err == nil || !strings.Contains(err.Error(), "its params are field, extract") {
		t.Fatalf("unknown param far from any: %v", err)
	}
	if err := CheckParams("math_answer", map[string]any{"extract": "hash"}); !errors.As(err, &pe) || pe.Key != "" || !strings.Contains(pe.Msg, "extract") {
		t.Fatalf("wrong type: %v", err)
	}
	if err := CheckParams("math_answr", nil); err == nil || !strings.Contains(err.Error(), "the types are") {
		t.Fatalf("unknown type: %v", err)
	}
	if err := CheckParams("math_answer", map[string]any{"extract": []any{"hash"}}); err != nil {
		t.Fatal(err)
	}
}

func TestParamsDocDurations(t *testing.T) {
	ps, _ := Params("external")
	for _, p := range ps {
		if p.Key == "timeout" && (p.Type != "duration" || p.Default != `"10s"`) {
			t.Errorf("external timeout documented as %+v", p)
		}
	}
}
