package tokenizer

import (
	"math/rand"
	"strings"
)

// baseCorpus covers the cases tokenizers get wrong: whitespace runs,
// contractions in both cases, numbers, code, URLs, many scripts, emoji
// sequences, combining marks, full-width forms, invisible spaces,
// special-token text, long repeats and invalid UTF-8.
var baseCorpus = []string{
	"", "Hello, world!", "The quick brown fox jumps over the lazy dog.",
	// whitespace
	" ", "  ", "   ", "a  b", "a   b", "a    b", "trailing ", "trailing   ", " leading", "   leading",
	"\t", "\t\tindented", "a\tb\tc", "\n", "\n\n", "a\nb", "a\n\nb", "a\n\n\n\nb", "\r\n", "a\r\nb\r\n",
	" \n ", "a \n b", "a  \n  b", "line\n  indented\n\tTabbed", "  \t \n\t  x", "x \t", "end\n", "end \n \n",
	// contractions
	"I'm", "I'M", "don't", "DON'T", "Don'T", "you're", "YOU'RE", "they've", "THEY'VE", "we'll", "WE'LL",
	"I'd", "I'D", "it's", "IT'S", "'s", "'S", "'sup", "O'Neil's", "rock 'n' roll", "''", "'", "He said 'hi'",
	"can't won't shouldn't", "ma'am", "’s curly", "y’all’re",
	// numbers
	"0", "7", "42", "123", "1234", "12345", "1234567890", "3.14159", "1,000,000", "-17", "+3e-10",
	"12345678901234567890123", "x1y22z333", "v1.2.3", "2026-11-22T02:10:00Z", "٣٤٥ ١٢", "①②③", "ⅫⅣ", "¹²³", "½ ¾",
	// code
	"func main() {\n\tfmt.Println(\"hi\")\n}", "for i in range(10):\n    print(i)\n", "if (a && b || !c) { return x->y; }",
	"<div class=\"x\">text</div>", "SELECT * FROM t WHERE id = 1;", "x+=1;y-=2;z*=3", "#include <stdio.h>\nint main(void){}",
	"a = [1, 2, 3]  # comment", "def f(x):\n\treturn x**2\n\n\n", "    indented code", "{\"key\": [null, true, 1.5e3]}",
	"$ ls -la | grep '.go$' > out.txt", "λx.x", "std::vector<int> v{1,2};", "// TODO(bob): fix",
	// urls
	"https://example.com/path?q=1&r=2#frag", "mailto:user@example.org", "www.x.y/~user/index.html", "ftp://[::1]:21/",
	// scripts
	"你好，世界", "日本語のテキストです。", "한국어 문장입니다", "漢字かなカナ混じり文", "中文 English 混合", "Ελληνικά κείμενα",
	"Русский текст, ёлка", "ไทยภาษา", "हिन्दी भाषा", "مرحبا بالعالم", "السلام عليكم ورحمة الله", "שלום עולם", "Türkçe ığüşöç",
	"Tiếng Việt có dấu", "ქართული", "Ꭰ Cherokee", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𝟙𝟚𝟛",
	// emoji
	"👍", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇯🇵🇺🇸", "😀😃😄", "a😀b", "emoji at end 🎉", "🧑🏿‍💻 codes", "#️⃣", "👩🏻‍❤️‍💋‍👨🏼",
	// combining marks and normalization
	"e\u0301", "Cafe\u0301", "café", "n\u0303o", "a\u0308\u0304", "\u1100\u1161\u11a8", "\u212b", "\u2126hm",
	"ﬁ ligature", "Z\u0351\u0364\u0310a\u0337\u0324l\u0336go", "\u0915\u094d\u0937", "x\u0300\u0301\u0302\u0303",
	// full-width and compatibility forms
	"ＡＢＣ１２３", "！？。", "ｶﾀｶﾅ", "Ｈｅｌｌｏ　Ｗｏｒｌｄ", "㎏㎞", "™©®",
	// invisible and unusual spaces
	"a\u200bb", "a\u200db", "a\u200cb", "a\u00a0b", "\u00a0\u00a0x", "x\u00a0", "\ufeffBOM", "x\u2028y", "x\u2029y",
	"\u3000全角スペース", "a\u202fb", "a\u0085b", "a\u180eb", "a\u2003\u2003b", "a \u00a0 b", "\u2060word\u2060",
	"a\u000bb\u000cc", "\u00ad soft hyphen",
	// special-token text inside ordinary text
	"<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|>", "a<|endoftext|>b", "<|begin_of_text|>Hello",
	"<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>", "<s>hi</s>", "<s> [INST] hi [/INST]", "<unk>", "<|im_start|>",
	"text<|im_end|>text", "< |im_start| >", "<|im_start", "<think>\nreason\n</think>\n\nanswer", "<|im_end|><|im_end|>",
	"<<SYS>>\nsystem\n<</SYS>>", "<0x41>", "<|reserved_special_token_5|>",
	// long repeats
	strings.Repeat("a", 56), strings.Repeat("ab", 40), strings.Repeat(" ", 30), strings.Repeat("\n", 20),
	strings.Repeat("!", 50), strings.Repeat("🙂", 10), strings.Repeat("1", 33), strings.Repeat("a ", 30),
	strings.Repeat("=", 80), strings.Repeat("-", 100), strings.Repeat("ha", 100), strings.Repeat("\t", 9),
	strings.Repeat("好", 40), strings.Repeat("x", 300), strings.Repeat(" \n", 12),
	// invalid UTF-8
	"\xff", "abc\xfe\xffdef", "\xe2\x82", "\xc3(", "\xed\xa0\x80", "\xf0\x9f\x98", "\x80\x80", "ok\xe9t\xe9", "a\xf4\x90\x80\x80b",
	// control characters and symbols
	"\x00", "a\x01b\x1fc", "\x7f", "∑∫√∞≠≤", "→←↑↓", "€£¥₹", "°C ±5", "§¶†‡", "…—–", "«quotes» „low“",
}

// corpus returns the base strings, deterministic combinations of them (so
// the test sees boundaries between categories too) and short random strings
// over an alphabet of the characters pre-tokenizers treat differently.
func corpus() []string {
	out := append([]string(nil), baseCorpus...)
	rng := rand.New(rand.NewSource(7))
	for len(out) < 320 {
		a := baseCorpus[rng.Intn(len(baseCorpus))]
		b := baseCorpus[rng.Intn(len(baseCorpus))]
		sep := []string{"", " ", "\n", "  ", "\t"}[rng.Intn(5)]
		out = append(out, a+sep+b)
	}
	alphabet := []string{
		" ", " ", " ", "\n", "\r", "\t", "\u00a0", "\u3000", "\u2028", "\ufeff", "\u200b",
		"a", "b", "Z", "é", "ß", "Ω", "я", "中", "の", "한", "ا", "\u0301",
		"0", "1", "9", "٣", "½", "Ⅻ",
		"'", "'", "s", "S", "t", "re", "VE", "ll", "d", "m",
		".", ",", "!", "?", "-", "_", "(", ")", "\"", "#", "$", "€", "😀", "👍🏽", "\u200d",
		"<|im_end|>", "<|eot_id|>", "<s>", "</s>", "<|", "|>",
	}
	for i := 0; i < 1000; i++ {
		var sb strings.Builder
		for n := rng.Intn(12) + 1; n > 0; n-- {
			sb.WriteString(alphabet[rng.Intn(len(alphabet))])
		}
		out = append(out, sb.String())
	}
	return out
}

// mixedText returns about n bytes of varied text: prose, code, numbers,
// several scripts and emoji, with special-token text now and then.
func mixedText(n int) string {
	rng := rand.New(rand.NewSource(11))
	words := strings.Fields("the of and to in is was for that with as on by at from his her they this which were are be have had not but or an their one all would there been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three")
	other := []string{"你好世界", "日本語", "مرحبا", "Привет", "😀", "👍🏽", "ＡＢＣ", "café", "e\u0301", "\u00a0", "1234567", "3.14", "don't", "IT'S", "<|im_end|>", "\t", "  ", "\n\n", "https://x.org/a?b=c", "x := f(y) // ok", "{\"a\": 1}", "λ", "한국어", "ไทย", "‍", "'s"}
	var sb strings.Builder
	for sb.Len() < n {
		switch r := rng.Intn(20); {
		case r < 13:
			w := words[rng.Intn(len(words))]
			if rng.Intn(8) == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			sb.WriteString(w)
		case r < 18:
			sb.WriteString(other[rng.Intn(len(other))])
		default:
			sb.WriteString([]string{".", ",", "!", "?", ";", ":", "(", ")", "\""}[rng.Intn(9)])
		}
		switch r := rng.Intn(12); {
		case r < 9:
			sb.WriteByte(' ')
		case r < 10:
			sb.WriteByte('\n')
		case r < 11:
			sb.WriteString(". ")
		}
	}
	return sb.String()
}
