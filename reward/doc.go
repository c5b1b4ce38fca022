// Package reward scores sampled completions for RL post-training: verifiable
// answer checks, rule-based format and length shaping, programmatic
// checklists, reference overlap (BLEU), verifiers for the built-in synthetic
// tasks and user programs. Several rewards combine into one scalar per
// sample, and a misbehaving reward never takes a run down.
//
// # Using it from the trainer
//
//	set, err := reward.New(cfg.Reward)          // a reward.Config
//	defer set.Close()
//	res, err := set.Score(ctx, samples)         // []reward.Sample, one per completion
//	// res.Total[i]       combined reward (NaN when res.Excluded[i])
//	// res.Excluded[i]    drop sample i from the loss (a reward failed on it)
//	// res.Components[k]  reward k's values, for per-reward normalisation (GDPO)
//	// res.Metrics        reward, reward_std, rewards/<name>/mean, reward/errors/<name>, …
//
// Score returns an error only when ctx is cancelled. For checkpoints,
// Set.MarshalState and Set.UnmarshalState save and restore rewards that learn
// during training (partial_credit's running pass rates).
//
// A Sample carries the prompt, the completion text and token ids, the finish
// reason ("stop" or "length"), the dataset row's extra fields as a
// map[string]any (decoded JSON or Go values), and Group, which identifies
// the prompt the completion was sampled for (one GRPO group).
//
// The likelihood reward scores text with the policy being trained: the
// trainer builds the set WithPolicy (a Policy: tokenizer and batched
// log-probs), and gives each Sample its PromptIDs.
//
// Field names the built-ins read by default (each is a param):
//
//	answer      reference answer: math_answer, arithmetic, exact_match,
//	            likelihood (a data.Example's Answer belongs here)
//	numbers     countdown: the allowed integers
//	target      countdown: the integer to reach
//	checklist   checklist: a list of Criterion objects
//	tests       partial_credit: a list of Criterion objects
//	references  bleu: reference text(s)
//
// # Config
//
// Config is the reward section of a run config (package train/config
// decodes it from YAML, with file and line in every error; its options are
// declared by the struct tags of Config, Spec and Shaping). It is a list of
// {name, type, weight, params} entries, or a mapping with that list under
// functions plus combine, shaping and timeout:
//
//	reward:
//	  combine: sum            # sum (default) or min
//	  timeout: 60s            # per reward per batch
//	  functions:
//	    - {name: acc, type: math_answer, weight: 1.0}
//	    - name: fmt
//	      type: format
//	      weight: 0.2
//	      params: {partial: true}
//	    - name: len
//	      type: length
//	      weight: 0.1
//	      fallback: 0         # score for samples this reward fails on; default exclude
//	      params: {mode: overlong, max_length: 1024, buffer: 256}
//
// Unknown params are errors naming the reward and the param:
// `reward[1] "fmt": params: unknown param "partail"`,
// `reward[1] "fmt": unknown type "foramt"`. Params decode into one typed
// struct per type (MathAnswerParams, FormatParams, …), which Go callers may
// pass directly as Spec.Params; Build makes a single reward from a Spec.
//
// # Built-in rewards
//
// Every reward's params struct documents each param and its default.
//
//   - math_answer (MathAnswerParams): extracts the final answer, trying in
//     order <answer>…</answer>, \boxed{…} (nested braces; last of several by
//     default), "#### n" and the last number, after dropping the
//     <think>…</think> section; compares with field "answer" (a string, a
//     number or a list of acceptable answers) numerically with tolerance,
//     exactly or after normalisation. Numbers may use thousands separators,
//     fractions (3/4, \frac{3}{4}), percent, negative signs (also U+2212),
//     scientific forms (1e30, 10^30, 2\times10^{5}) and any Unicode decimal
//     digits; they are compared as exact rationals. Range [0, 1] by default.
//   - arithmetic (ArithmeticParams): verifier for the synthetic arithmetic
//     task; field "answer" is an integer (string or number); the answer is
//     taken from <answer>…</answer>, \boxed{…} or the first line (a
//     sentence there is reduced to its last number); it must be an integer
//     written as digits ("19.0" is not 19) equal to the answer. Range [0, 1].
//     The task's eval accuracy (data.Task.Score) is this same verifier.
//   - countdown (CountdownParams): verifier for the synthetic countdown task;
//     fields "numbers" (list of integers) and "target" (integer). The
//     expression (in <answer>…</answer>, else the first line; text after
//     "=" is ignored) must use + − × ÷ and parentheses with each given
//     number at most once (use_all: exactly once) and equal the target
//     exactly, in rationals. It is parsed by internal/mathx, a bounded
//     evaluator that executes nothing. Range [0, 1]. The task's eval
//     accuracy (data.Task.Score) is this same verifier.
//   - exact_match (ExactMatchParams): normalised string equality with field
//     "answer" (string or list). Range [0, 1].
//   - format (FormatParams): <think>…</think><answer>…</answer> structure
//     (configurable tags) or regular expressions; all-or-nothing or the
//     fraction of checks passed. Range [0, 1].
//   - length (LengthParams): linear or cosine bands around [lo, hi], or
//     DAPO's overlong punishment (0 … −1 over the last buffer tokens).
//     Range [min(inside, outside), max(inside, outside)] or [−1, 0].
//   - checklist (ChecklistParams): weighted fraction of criteria passed
//     (contains, not_contains, regex, not_regex, length bounds, json,
//     number_range, equals); criteria come from params and from field
//     "checklist" (a list of Criterion objects). adaptive: true emphasises
//     criteria whose pass rate varies within the group. Range [0, 1].
//   - partial_credit (PartialCreditParams): checks from field "tests"
//     (Criterion objects), each weighted by its difficulty 1 − p, p its
//     running pass rate across training, mixed with the all-pass outcome.
//     Range [0, 1].
//   - bleu (BLEUParams): sentence BLEU / 100 against field "references"
//     (string or list), with sacrebleu's defaults (13a tokens, exp
//     smoothing, effective order); metric corpus_bleu. Range [0, 1].
//   - external (ExternalParams): a user program speaking JSON lines on
//     stdin/stdout, run as a pool of long-lived processes with a per-request
//     timeout and restart after a crash, a timeout or a garbled answer.
//
// Regular expressions (format, checklist) use Go's RE2 engine: matching is
// linear in the input, so patterns such as (a+)+$ cannot backtrack
// catastrophically on adversarial completions.
//
// # Combination
//
// The total is Σ_k w_k r_k (combine: sum) or min_k w_k r_k (combine: min,
// the worst case over an ensemble). Each reward's values are also returned
// separately (Result.Components) so a per-reward normaliser such as GDPO
// can normalise each before summing. Shaping {type: sigmoid, ref, ref_field,
// scale}, on one reward or on the total, maps r to σ((r − ref)/scale), a
// bounded value in (0, 1); ref may be a constant, a sample field or
// "group_mean".
//
// # Isolation
//
// A reward that panics, returns an error, returns NaN or ±Inf, or runs past
// its timeout marks the affected samples as failed; they get the reward's
// fallback (default: excluded from the loss, Result.Excluded) and the
// failure is counted in the metric reward/errors/<name>. Each distinct error
// message is logged once. The built-ins (and rewards written with
// PerSample) isolate samples: a panic fails one sample, and at the deadline
// only the samples not yet scored fail, so one sample that hangs costs only
// itself. A Reward whose Score call itself does not return by the deadline
// fails the whole batch; the call is abandoned (Go cannot stop a goroutine)
// and that reward is skipped until it returns.
//
// # Performance
//
// Per-sample rewards score samples in parallel on all cores (GOMAXPROCS);
// the rewards of a Set run concurrently. BenchmarkThroughput measures
// math_answer + format + length on 10,000 completions of about 500 tokens.
package reward
