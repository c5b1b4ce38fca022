package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
)

// Hugging Face's file names for a model's weights.
const (
	SingleFile = "model.safetensors"
	IndexFile  = "model.safetensors.index.json"
)

// maxIndexBytes bounds the index JSON we are willing to read; real ones are
// a few hundred kilobytes.
const maxIndexBytes = 100 << 20

// shardName matches the names WriteSharded gives shards, so stale shards of
// an earlier save can be removed.
var shardName = regexp.MustCompile(`^model-\d{5}-of-\d{5}\.safetensors$`)

// index is the sharded-checkpoint index. Its metadata values are usually
// numbers ("total_size"), so they are kept raw.
type index struct {
	Metadata  map[string]json.RawMessage `json:"metadata"`
	WeightMap map[string]string          `json:"weight_map"`
}

// ReadModel loads a model's weights from dir: model.safetensors if present,
// otherwise the shards listed in model.safetensors.index.json. If dir is a
// file it is read with ReadFile.
//
// For sharded models every shard header is checked against the index before
// any data is loaded: each tensor in the weight map must be in the shard the
// map names, and each shard may hold only tensors the map assigns to it.
// The returned metadata merges the shards' __metadata__ with the index's
// "metadata" (index wins; non-string index values are kept as JSON text).
func ReadModel(dir string) (map[string]*Tensor, map[string]string, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	if !st.IsDir() {
		return ReadFile(dir)
	}
	single := filepath.Join(dir, SingleFile)
	if _, err := os.Stat(single); err == nil {
		return ReadFile(single)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	indexPath := filepath.Join(dir, IndexFile)
	if _, err := os.Stat(indexPath); errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("safetensors: %s has neither %s nor %s", dir, SingleFile, IndexFile)
	}
	idx, err := readIndex(indexPath)
	if err != nil {
		return nil, nil, err
	}
	shards, err := checkShards(dir, indexPath, idx)
	if err != nil {
		return nil, nil, err
	}
	tensors := make(map[string]*Tensor, len(idx.WeightMap))
	meta := make(map[string]string)
	for _, shard := range shards {
		ts, m, err := ReadFile(filepath.Join(dir, shard))
		if err != nil {
			return nil, nil, err
		}
		for name, t := range ts {
			tensors[name] = t
		}
		for k, v := range m {
			meta[k] = v
		}
	}
	for k, raw := range idx.Metadata {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			meta[k] = s
		} else {
			meta[k] = string(raw)
		}
	}
	return tensors, meta, nil
}

func readIndex(path string) (*index, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors index: %w", err)
	}
	if st.Size() > maxIndexBytes {
		return nil, fmt.Errorf("safetensors index %s: %d bytes exceeds the %d-byte limit", path, st.Size(), maxIndexBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors index: %w", err)
	}
	var idx index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("safetensors index %s: %w", path, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors index %s: weight_map is empty", path)
	}
	return &idx, nil
}

// checkShards compares each shard's header with the weight map and returns
// the shard file names in sorted order.
func checkShards(dir, indexPath string, idx *index) ([]string, error) {
	want := make(map[string][]string) // shard -> tensors the index puts there
	for tensor, shard := range idx.WeightMap {
		if shard == "" || shard == "." || shard == ".." || filepath.Base(shard) != shard {
			return nil, fmt.Errorf("safetensors index %s: tensor %q maps to %q, which is not a file name in the model directory",
				indexPath, tensor, shard)
		}
		want[shard] = append(want[shard], tensor)
	}
	shards := make([]string, 0, len(want))
	for shard, names := range want {
		sort.Strings(names)
		shards = append(shards, shard)
	}
	sort.Strings(shards)
	for _, shard := range shards {
		path := filepath.Join(dir, shard)
		h, err := ReadHeaderFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("safetensors index %s lists shard %s (tensor %q), which is missing: %w",
				indexPath, shard, want[shard][0], err)
		}
		if err != nil {
			return nil, err
		}
		have := make(map[string]bool, len(h.Tensors))
		for _, t := range h.Tensors {
			have[t.Name] = true
			if mapped, ok := idx.WeightMap[t.Name]; !ok {
				return nil, fmt.Errorf("safetensors %s: tensor %q is not in index %s", path, t.Name, indexPath)
			} else if mapped != shard {
				return nil, fmt.Errorf("safetensors %s: tensor %q is also here, but index %s maps it to %s",
					path, t.Name, indexPath, mapped)
			}
		}
		for _, name := range want[shard] {
			if !have[name] {
				return nil, fmt.Errorf("safetensors index %s: tensor %q maps to %s, which does not contain it",
					indexPath, name, path)
			}
		}
	}
	return shards, nil
}

// WriteSharded saves tensors into dir the way Hugging Face does: one
// model.safetensors when everything fits in maxShardBytes, otherwise
// model-0000i-of-0000n.safetensors shards plus model.safetensors.index.json.
// Tensors are assigned greedily in name order; a tensor larger than the
// limit gets a shard of its own. metadata goes into every shard.
//
// Weights of an earlier save in dir that would shadow or confuse the new one
// (a stale single file, index or shards) are removed after the new files are
// in place.
func WriteSharded(dir string, tensors []*Tensor, metadata map[string]string, dtype DType, maxShardBytes int64) error {
	if maxShardBytes <= 0 {
		return fmt.Errorf("write safetensors %s: shard limit %d must be positive", dir, maxShardBytes)
	}
	if !writable[dtype] {
		return fmt.Errorf("write safetensors %s: cannot write dtype %q; supported dtypes are %s",
			dir, string(dtype), supportedList(writable))
	}
	sorted, err := sortedForWrite(tensors)
	if err != nil {
		return fmt.Errorf("write safetensors %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	var groups [][]*Tensor
	var fill, total int64
	for _, t := range sorted {
		size, err := dtype.byteSize(int64(len(t.Data)))
		if err != nil {
			return fmt.Errorf("write safetensors %s: tensor %q: %w", dir, t.Name, err)
		}
		if len(groups) == 0 || (fill > 0 && fill+size > maxShardBytes) {
			groups = append(groups, nil)
			fill = 0
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], t)
		fill += size
		total += size
	}
	if len(groups) <= 1 {
		if err := WriteFile(filepath.Join(dir, SingleFile), sorted, metadata, dtype); err != nil {
			return err
		}
		return removeStale(dir, nil, IndexFile)
	}
	idx := struct {
		Metadata  map[string]any    `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{map[string]any{"total_size": total}, make(map[string]string, len(sorted))}
	keep := make(map[string]bool, len(groups))
	for i, g := range groups {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(groups))
		keep[name] = true
		if err := WriteFile(filepath.Join(dir, name), g, metadata, dtype); err != nil {
			return err
		}
		for _, t := range g {
			idx.WeightMap[t.Name] = name
		}
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("write safetensors index: %w", err)
	}
	indexPath := filepath.Join(dir, IndexFile)
	if err := writeAtomic(indexPath, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	}); err != nil {
		return fmt.Errorf("write safetensors index %s: %w", indexPath, err)
	}
	return removeStale(dir, keep, SingleFile)
}

// removeStale deletes extra (a single file or an index) and every shard file
// not in keep.
func removeStale(dir string, keep map[string]bool, extra string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("remove stale weights: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if name != extra && !(shardName.MatchString(name) && !keep[name]) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("remove stale weights: %w", err)
		}
	}
	return nil
}

// ReadModelShapes is ReadModel without the data: it reads and checks only
// the headers (of model.safetensors, or of every shard against the index)
// and returns each tensor with its name, shape and file and a nil Data. A
// loader compares these with what its config implies before it allocates
// anything, so a config that lies about the model's size fails at once.
func ReadModelShapes(dir string) (map[string]*Tensor, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	files := []string{dir}
	if st.IsDir() {
		single := filepath.Join(dir, SingleFile)
		if _, err := os.Stat(single); err == nil {
			files = []string{single}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("safetensors: %w", err)
		} else {
			indexPath := filepath.Join(dir, IndexFile)
			if _, err := os.Stat(indexPath); errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("safetensors: %s has neither %s nor %s", dir, SingleFile, IndexFile)
			}
			idx, err := readIndex(indexPath)
			if err != nil {
				return nil, err
			}
			shards, err := checkShards(dir, indexPath, idx)
			if err != nil {
				return nil, err
			}
			files = files[:0]
			for _, s := range shards {
				files = append(files, filepath.Join(dir, s))
			}
		}
	}
	out := map[string]*Tensor{}
	for _, f := range files {
		h, err := ReadHeaderFile(f)
		if err != nil {
			return nil, err
		}
		for _, t := range h.Tensors {
			if !readable[t.DType] {
				return nil, fmt.Errorf("safetensors %s: tensor %q has dtype %s; supported dtypes are %s",
					f, t.Name, t.DType, supportedList(readable))
			}
			out[t.Name] = &Tensor{Name: t.Name, Shape: t.Shape, File: f}
		}
	}
	return out, nil
}
