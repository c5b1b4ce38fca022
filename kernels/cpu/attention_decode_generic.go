//go:build !(goexperiment.simd && amd64)

package cpu

func decodeScores(scores, q, kp []float32, offs []int, scale float32) float32 {
	return decodeScoresScalar(scores, q, kp, offs, scale)
}

func decodeWeighted(out, p, vp []float32, offs []int) { decodeWeightedScalar(out, p, vp, offs) }
