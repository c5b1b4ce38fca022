module github.com/rltrain/rltrain

go 1.26.8

require (
	github.com/dlclark/regexp2 v1.11.5
	github.com/spf13/cobra v1.8.1
	golang.org/x/text v0.31.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.5 // indirect
)
