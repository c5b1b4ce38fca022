package reward_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rltrain/rltrain/reward"
)

func Example() {
	var cfg reward.Config
	// The same document works as YAML (reward: section of a run config).
	err := json.Unmarshal([]byte(`{
		"functions": [
			{"name": "acc", "type": "math_answer"},
			{"name": "fmt", "type": "format", "weight": 0.5, "params": {"partial": true}},
			{"name": "len", "type": "length", "weight": 0.1,
			 "params": {"mode": "overlong", "unit": "chars", "max_length": 40, "buffer": 10}}
		]}`), &cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	set, err := reward.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer set.Close()
	samples := []reward.Sample{
		{Completion: "<think>2+2</think><answer>4</answer>", Fields: map[string]any{"answer": "4"}},
		{Completion: "the answer is not 4, it is 5", Fields: map[string]any{"answer": "4"}},
	}
	res, err := set.Score(context.Background(), samples)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range samples {
		fmt.Printf("total %.3f  acc %.0f  fmt %.3f  len %.2f\n", res.Total[i],
			res.Components[0][i], res.Components[1][i], res.Components[2][i])
	}
	// Output:
	// total 1.440  acc 1  fmt 1.000  len -0.60
	// total 0.000  acc 0  fmt 0.000  len 0.00
}
