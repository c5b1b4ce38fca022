// Temporary: this package needs gopkg.in/yaml.v3 in the root go.mod. Until
// the root module requires it, the package builds as its own module so the
// root build stays green. Delete this file and go.sum here once the root
// go.mod has `require gopkg.in/yaml.v3 v3.0.1`.
module github.com/rltrain/rltrain/train/config

go 1.26.8

require (
	github.com/rltrain/rltrain v0.0.0
	gopkg.in/yaml.v3 v3.0.1
)

replace github.com/rltrain/rltrain => ../..
