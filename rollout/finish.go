package rollout

// Public is the finish reason as vLLM, Hugging Face and OpenAI's API report
// it: "stop" for an end-of-sequence token or a stop string, "length" for a
// completion cut at the token limit.
func (f FinishReason) Public() string {
	if f == FinishLength {
		return "length"
	}
	return "stop"
}

// StopKind says what stopped a completion whose public reason is "stop":
// "eos" (an end-of-sequence or stop token) or "stop_string"; "" otherwise.
func (f FinishReason) StopKind() string {
	switch f {
	case FinishEOS:
		return "eos"
	case FinishStop:
		return "stop_string"
	}
	return ""
}
