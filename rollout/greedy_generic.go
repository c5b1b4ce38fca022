//go:build !(goexperiment.simd && amd64)

package rollout

// greedyRow is greedyRowScalar in builds without GOEXPERIMENT=simd.
func greedyRow(logits []float32) (int32, float32) { return greedyRowScalar(logits) }
