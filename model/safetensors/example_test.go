package safetensors_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rltrain/rltrain/model/safetensors"
)

// A loader saves weights, reads them back and picks out what its config
// needs, getting one error that lists every problem.
func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	weights := []*safetensors.Tensor{
		{Name: "embed", Shape: []int{4, 2}, Data: make([]float32, 8)},
		{Name: "norm", Shape: []int{2}, Data: []float32{1, 1}},
		{Name: "stale", Shape: []int{1}, Data: []float32{0}},
	}
	if err := safetensors.WriteSharded(dir, weights, nil, safetensors.BF16, 1<<30); err != nil {
		fmt.Println(err)
		return
	}
	tensors, meta, err := safetensors.ReadModel(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("format:", meta["format"])

	p := safetensors.NewPicker("model", tensors)
	p.Take("embed", 4, 2)
	p.Take("norm", 3)
	if err := p.Err(); err != nil {
		// Strip the temporary directory so the output is stable.
		fmt.Println(strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""))
	}
	// Output:
	// format: pt
	// file model.safetensors: tensor "norm" has shape [2], config wants [3]
	// model: 1 tensors not used by the model: "stale" (file model.safetensors)
}
