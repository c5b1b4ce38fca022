package dist

import (
	"os"
	"strconv"
)

// MpirunFlags returns the arguments of Open MPI's mpirun that start n ranks
// of prog args... on this machine whoever runs it (root in containers and
// CI) and whatever the core count (n may exceed it).
func MpirunFlags(n int, prog string, args ...string) []string {
	out := []string{"-np", strconv.Itoa(n), "--oversubscribe"}
	if os.Geteuid() == 0 {
		out = append(out, "--allow-run-as-root")
	}
	out = append(out, "--mca", "btl_vader_single_copy_mechanism", "none", prog)
	return append(out, args...)
}
