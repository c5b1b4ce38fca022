//go:build !(goexperiment.simd && amd64)

package rollout

// greedyRow is greedyRowScalar in builds without GOEXPERIMENT=simd.
func greedyRow(logits []float32) (int32, float32) { return greedyRowScalar(logits) }

// rowMax and expWeights leave the work to the scalar code of Sample.
func rowMax([]float32) (float32, bool)                                  { return 0, false }
func expWeights([]float64, []float32, float32, float64) (float64, bool) { return 0, false }
