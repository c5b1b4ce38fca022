package main

import (
	"fmt"
	"io"

	"github.com/rltrain/rltrain/model"
)

// warnNonFinite tells the user, naming the tensor, that a model they load
// for inference holds NaN or infinite weights (a diverged or corrupted
// checkpoint): its outputs will be meaningless, but inspecting it is
// allowed.
func warnNonFinite(w io.Writer, dir string, m *model.Model) {
	if name, i, v, bad := m.NonFinite(); bad {
		fmt.Fprintf(w, "warning: %s: tensor %q holds %v (at index %d): the weights are not finite and outputs will be NaN\n", dir, name, v, i)
	}
}
