package safetensors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
)

// shardTensors are 10 F32 tensors of 64 bytes each.
func shardTensors() []*Tensor {
	var out []*Tensor
	for i := range 10 {
		data := make([]float32, 16)
		for j := range data {
			data[j] = float32(i*16 + j) // integers below 256: exact in bf16
		}
		out = append(out, &Tensor{Name: "layer." + string(rune('a'+i)), Shape: []int{4, 4}, Data: data})
	}
	return out
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func TestWriteShardedRoundTrip(t *testing.T) {
	cases := []struct {
		name     string
		limit    int64
		dtype    DType
		wantFile []string
	}{
		{"one file", 1 << 20, F32, []string{SingleFile}},
		// 3 tensors of 64 bytes fit in 200: 10 tensors make 4 shards.
		{"four shards", 200, F32, []string{"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
			"model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors", IndexFile}},
		// Each tensor alone exceeds the limit: one shard per tensor.
		{"oversized tensors", 10, BF16, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			in := shardTensors()
			if err := WriteSharded(dir, in, map[string]string{"k": "v"}, c.dtype, c.limit); err != nil {
				t.Fatal(err)
			}
			names := dirNames(t, dir)
			if c.wantFile != nil && !slices.Equal(names, c.wantFile) {
				t.Errorf("files %v, want %v", names, c.wantFile)
			}
			if c.wantFile == nil && len(names) != 11 {
				t.Errorf("files %v, want 10 shards and an index", names)
			}
			got, meta, err := ReadModel(dir)
			if err != nil {
				t.Fatal(err)
			}
			if meta["k"] != "v" {
				t.Errorf("metadata %v lacks k=v", meta)
			}
			for i, g := range matchTensors(t, got, in) {
				sameBits(t, in[i].Name, g.Data, in[i].Data)
			}
		})
	}
}

func TestShardIndexContents(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSharded(dir, shardTensors(), nil, F32, 200); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	if idx.Metadata["total_size"] != 640 {
		t.Errorf("total_size %d, want 640", idx.Metadata["total_size"])
	}
	if got := idx.WeightMap["layer.d"]; got != "model-00002-of-00004.safetensors" {
		t.Errorf("layer.d in %q", got)
	}
	if len(idx.WeightMap) != 10 {
		t.Errorf("weight map has %d entries", len(idx.WeightMap))
	}
}

// TestWriteShardedRemovesStale saves sharded over single and back; the
// loader must always see the newest save.
func TestWriteShardedRemovesStale(t *testing.T) {
	dir := t.TempDir()
	in := shardTensors()
	if err := WriteSharded(dir, in, nil, F32, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := WriteSharded(dir, in[:4], nil, F32, 130); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); len(names) != 3 || slices.Contains(names, SingleFile) {
		t.Errorf("after sharded save: %v", names)
	}
	got, _, err := ReadModel(dir)
	if err != nil || len(got) != 4 {
		t.Fatalf("read %d tensors, err %v", len(got), err)
	}
	if err := WriteSharded(dir, in[:1], nil, F32, 1<<20); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{SingleFile}) {
		t.Errorf("after single save: %v", names)
	}
}

// writeShards writes hand-picked shard contents and an index json.
func writeShards(t *testing.T, shards map[string][]string, weightMap map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for file, names := range shards {
		var ts []*Tensor
		for _, n := range names {
			ts = append(ts, &Tensor{Name: n, Shape: []int{1}, Data: []float32{1}})
		}
		if err := WriteFile(filepath.Join(dir, file), ts, nil, F32); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 8}, "weight_map": weightMap})
	if err != nil {
		t.Fatal(err)
	}
	writeTemp(t, dir, IndexFile, b)
	return dir
}

func TestShardedErrors(t *testing.T) {
	const s1, s2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
	cases := []struct {
		name      string
		shards    map[string][]string
		weightMap map[string]string
		want      []string // substrings; file names are checked as base names
	}{
		{"tensor missing from its shard", map[string][]string{s1: {"a"}, s2: {"b"}},
			map[string]string{"a": s1, "b": s2, "c": s2}, []string{`"c"`, s2, IndexFile, "does not contain"}},
		{"shard tensor not in map", map[string][]string{s1: {"a", "extra"}, s2: {"b"}},
			map[string]string{"a": s1, "b": s2}, []string{`"extra"`, s1, IndexFile}},
		{"tensor in two shards", map[string][]string{s1: {"a", "b"}, s2: {"b"}},
			map[string]string{"a": s1, "b": s2}, []string{`"b"`, s1, s2}},
		{"missing shard file", map[string][]string{s1: {"a"}},
			map[string]string{"a": s1, "b": s2}, []string{s2, IndexFile, `"b"`, "missing"}},
		{"shard outside dir", map[string][]string{s1: {"a"}},
			map[string]string{"a": "../" + s1}, []string{`"a"`, "../" + s1}},
		{"empty weight map", map[string][]string{s1: {"a"}}, map[string]string{}, []string{"weight_map is empty"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeShards(t, c.shards, c.weightMap)
			_, _, err := ReadModel(dir)
			mustMention(t, err, c.want...)
			t.Log(err)
		})
	}
}

func TestReadModelForms(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := ReadModel(dir); err == nil {
		t.Error("empty dir: no error")
	} else {
		mustMention(t, err, dir, SingleFile, IndexFile)
	}
	writeTemp(t, dir, IndexFile, []byte(`{"weight_map": [`))
	_, _, err := ReadModel(dir)
	mustMention(t, err, IndexFile)
	// A path to a file is read directly.
	file := filepath.Join(dir, "x.safetensors")
	if err := WriteFile(file, shardTensors()[:2], nil, F32); err != nil {
		t.Fatal(err)
	}
	got, _, err := ReadModel(file)
	if err != nil || len(got) != 2 {
		t.Errorf("ReadModel(file): %d tensors, %v", len(got), err)
	}
}
