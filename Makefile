# identity-operator. `make help` lists the targets.

# Pinned tools, built from the Go module proxy into bin/ (git-ignored).
CONTROLLER_TOOLS_VERSION ?= v0.21.0
LOCALBIN := $(CURDIR)/bin
CONTROLLER_GEN := $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)

# Packages whose tests need no control plane are fast; the others share one
# envtest control plane per package, built by `make envtest`.
GO_TEST_FLAGS ?= -count=1 -timeout 45m

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Write the CRDs and RBAC from the API types and kubebuilder markers.
	$(CONTROLLER_GEN) rbac:roleName=identity-operator crd paths="./api/..." paths="./controllers/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@# The chart ships the same CRDs and grants the same rules.
	@rm -f charts/identity-operator/crds/*.yaml && cp config/crd/bases/*.yaml charts/identity-operator/crds/
	@cp config/rbac/role.yaml charts/identity-operator/files/role.yaml
	@go run ./hack/apidocs config/crd/bases docs/api.md

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Write the deepcopy code of the API types.
	$(CONTROLLER_GEN) object paths="./api/..."

.PHONY: verify-generated
verify-generated: ## Fail when the generated files are not what `make manifests generate` writes.
	@hack/verify-generated.sh

.PHONY: fmt
fmt: ## gofmt the code.
	gofmt -s -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet, and a gofmt check.
	@unformatted=$$(gofmt -s -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "not gofmt'd: $$unformatted" >&2; exit 1; fi
	go vet ./...

.PHONY: envtest
envtest: ## Build kube-apiserver and etcd for the tests (first run ~5 min on 2 cores; cached in bin/).
	@hack/envtest.sh >/dev/null

.PHONY: helm
helm: ## Build helm from the Go module proxy into bin/ (first run ~3 min).
	@hack/helm.sh >/dev/null

.PHONY: test
test: verify-generated vet envtest helm ## Run every test against a real kube-apiserver and the emulator.
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" HELM="$$(hack/helm.sh)" go test $(GO_TEST_FLAGS) ./...

.PHONY: test-reliability
test-reliability: envtest ## Run the reliability suite at full size (faults, restarts, bad input, secrets; ~7 min on 2 cores).
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" RELIABILITY=full go test -count=1 -timeout 60m -v ./test/reliability/

BENCH_TENANTS ?= 100 1000
.PHONY: bench
bench: envtest ## Print the benchmark figures: emulator throughput; scale, steady state and deadline at 100 and 1,000 tenants; the deadline at the default resync; 5,000 tenants over 2 shards (~35 min).
	go run ./test/bench -scenario emulator
	@for n in $(BENCH_TENANTS); do \
		KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" go run ./test/bench -scenario all -tenants $$n -resync 10s -deadline-in 30s || exit 1; \
	done
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" go run ./test/bench -scenario deadline -tenants 1000 -resync 10m -deadline-in 40s
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" go run ./test/bench -scenario deadline -tenants 5000 -shards 2 -resync 10m -deadline-in 180s

.PHONY: run
run: ## Run the operator: against your cluster if a kube context is set, else on the embedded default (control plane + emulator + samples).
	@go build -o bin/devenv ./hack/devenv
	@bin/devenv $(RUN_ARGS)

.PHONY: build
build: generate ## Build the operator binary into bin/.
	go build -o $(LOCALBIN)/identity-operator .

$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	@echo ">> building controller-gen $(CONTROLLER_TOOLS_VERSION)" >&2
	@tmp=$$(mktemp -d) && GOBIN=$$tmp go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION) && mv $$tmp/controller-gen $@ && rmdir $$tmp
