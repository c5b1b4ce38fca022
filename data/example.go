package data

// Message is one turn of a chat-style prompt.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Example is one prompt with what its rewards need to score a completion.
// Exactly one of Prompt and Messages is set. For the built-in tasks Answer is
// the exact completion text an SFT warm-up trains on, so the SFT target of an
// example is Prompt+Answer followed by the end-of-sequence token.
type Example struct {
	ID       string         `json:"id"`
	Prompt   string         `json:"prompt,omitempty"`
	Messages []Message      `json:"messages,omitempty"`
	System   string         `json:"system,omitempty"`
	Answer   string         `json:"answer,omitempty"`
	Fields   map[string]any `json:"fields,omitempty"`
	// Where locates the example in its file for messages ("train.jsonl:12",
	// "train.parquet row 12"); empty for generated examples.
	Where string `json:"-"`
}
