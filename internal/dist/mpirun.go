package dist

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
)

// Mpirun returns Open MPI's mpirun (Debian's mpirun.openmpi when MPICH's
// mpirun is the default) or an error saying how to install it.
func Mpirun() (string, error) {
	for _, name := range []string{"mpirun.openmpi", "mpirun"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("mpirun not found: install Open MPI (make setup installs openmpi-bin and libopenmpi-dev)")
}

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
