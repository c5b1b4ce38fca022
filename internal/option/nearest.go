package option

// Nearest is the candidate a misspelt key probably meant: the closest
// within a small edit distance (a third of the key's length, at most 3),
// or "" when none is that close.
func Nearest(key string, candidates []string) string {
	best, bestDist := "", min(3, len(key)/3+1)
	for _, c := range candidates {
		if d := editDistance(key, c); d <= bestDist && (best == "" || d < editDistance(key, best)) {
			best = c
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
