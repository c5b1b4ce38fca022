package option

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

type Inner struct {
	Mode  string `yaml:"mode" default:"a" enum:"a,b" doc:"Mode."`
	Count int    `yaml:"count" default:"3" doc:"Count."`
}

func (in Inner) Check(c *Checker) { c.AtLeast("count", in.Count, 1) }

type textVal struct{ d time.Duration }

func (t *textVal) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		t.d = 0
		return nil
	}
	d, err := time.ParseDuration(string(b))
	t.d = d
	return err
}

type outer struct {
	Inner  `yaml:",inline"`
	Rate   float64   `yaml:"rate" default:"0.5" doc:"Rate."`
	List   []float64 `yaml:"list" default:"1,2" doc:"List."`
	Every  textVal   `yaml:"every" default:"2s" doc:"Every."`
	Sub    Inner     `yaml:"sub" doc:"Sub."`
	hidden int
	Skip   int `yaml:"-"`
}

func TestFieldsFlattenInline(t *testing.T) {
	var keys []string
	for _, f := range Fields(reflect.TypeOf(outer{})) {
		keys = append(keys, f.Key)
	}
	if want := []string{"mode", "count", "rate", "list", "every", "sub"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
}

func TestDefaults(t *testing.T) {
	o := Defaults[outer]()
	if o.Mode != "a" || o.Count != 3 || o.Rate != 0.5 || !reflect.DeepEqual(o.List, []float64{1, 2}) || o.Every.d != 2*time.Second || o.Sub.Count != 3 {
		t.Fatalf("defaults %+v", o)
	}
}

// Walk checks enums and calls Check under each section's path; the
// embedded section's Check runs for the outer value with the outer path.
func TestValidateNamesKeys(t *testing.T) {
	o := Defaults[outer]()
	o.Mode, o.Count, o.Sub.Count = "c", 0, -1
	err := Validate("sec", o)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`sec.mode: must be one of a, b, got "c"`, "sec.count: must be >= 1, got 0", "sec.sub.count: must be >= 1, got -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if err := Validate("sec", Defaults[outer]()); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
