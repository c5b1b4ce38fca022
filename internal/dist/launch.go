package dist

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// launch is what the environment says about how this process was started.
type launch struct {
	// by names the launcher ("" when the process runs on its own).
	by string
	// libs are the MPI libraries to try, most likely first.
	libs []string
}

// LibraryEnv names the variable that overrides which MPI library is loaded
// (a file name for dlopen's search or a path).
const LibraryEnv = "RLTRAIN_MPI_LIB"

// detect reads the launchers' variables. Open MPI's mpirun sets
// OMPI_COMM_WORLD_SIZE; PMIx servers (Open MPI under srun --mpi=pmix,
// prterun) PMIX_RANK; MPICH's hydra and Slurm's PMI-2 plugin PMI_RANK and
// PMI_SIZE. srun without an MPI plugin starts independent processes that
// could only each run the whole job: that is an error, not N copies of a
// one-process run writing the same files.
func detect(getenv func(string) string) (launch, error) {
	// Debian and Ubuntu name MPICH's library libmpich.so.12; its own
	// builds and the libraries sharing its ABI name it libmpi.so.12.
	ompi := []string{"libmpi.so.40", "libmpi.so.12", "libmpich.so.12", "libmpi.so"}
	mpich := []string{"libmpi.so.12", "libmpich.so.12", "libmpi.so.40", "libmpi.so"}
	var l launch
	switch {
	case getenv("OMPI_COMM_WORLD_SIZE") != "":
		l = launch{"Open MPI (OMPI_COMM_WORLD_SIZE=" + getenv("OMPI_COMM_WORLD_SIZE") + ")", ompi}
	case getenv("PMIX_RANK") != "":
		l = launch{"PMIx (PMIX_RANK=" + getenv("PMIX_RANK") + ")", ompi}
	case getenv("PMI_RANK") != "" || getenv("PMI_SIZE") != "":
		l = launch{"PMI (PMI_RANK=" + getenv("PMI_RANK") + ")", mpich}
	default:
		if n, _ := strconv.Atoi(getenv("SLURM_STEP_NUM_TASKS")); n > 1 {
			return launch{}, fmt.Errorf("started by srun as one of %d tasks without an MPI plugin: "+
				"run `srun --mpi=pmix rltrain ...` (or --mpi=pmi2 with MPICH) so the tasks form one job", n)
		}
		return launch{}, nil
	}
	if lib := getenv(LibraryEnv); lib != "" {
		l.libs = []string{lib}
	}
	return l, nil
}

// envLocalRank is the launcher's own word on this rank's index on its
// machine, if it gave one. SLURM_LOCALID counts only when srun started
// this very job step (mpirun inside an allocation inherits the batch
// step's value).
func envLocalRank(getenv func(string) string, size int) (int, bool) {
	names := []string{"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"}
	if n, _ := strconv.Atoi(getenv("SLURM_STEP_NUM_TASKS")); n == size {
		names = append(names, "SLURM_LOCALID")
	}
	names = append(names, "LOCAL_RANK")
	for _, name := range names {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			continue
		}
		if r, err := strconv.Atoi(v); err == nil && r >= 0 {
			return r, true
		}
	}
	return 0, false
}

// Launched reports whether an MPI launcher started this process.
func Launched() bool {
	l, err := detect(os.Getenv)
	return err != nil || l.by != ""
}
