# berth build. `make` builds everything into bin/ (the daemon, the shim, the
# pause process, the exec helper, the CLI, runc, crictl and the reference CNI
# plugins, all pinned in go.mod). `make test` installs what the tests need and runs them all.

GO        ?= go
BIN       := $(CURDIR)/bin
PREFIX    ?= /usr/local
LIBEXEC   := $(PREFIX)/lib/berth
CNI_BIN   := /opt/cni/bin
CNI_CONF  := /etc/cni/net.d
# Debian packages: what building needs, what a node needs to run pods
# (the CNI plugins call iptables and ip), and what only the tests need.
BUILD_DEBS := gcc libseccomp-dev pkg-config
NODE_DEBS  := iptables iproute2
TEST_DEBS  := busybox-static docker-registry containerd systemd
CNI_PLUGINS := \
	github.com/containernetworking/plugins/plugins/main/bridge \
	github.com/containernetworking/plugins/plugins/main/loopback \
	github.com/containernetworking/plugins/plugins/ipam/host-local \
	github.com/containernetworking/plugins/plugins/meta/portmap
TEST_FLAGS ?=

.PHONY: all build deps node-deps run-deps test-deps run run-clean test test-vm unit e2e bench install uninstall lint race fuzz chaos clean kube-tools

all: build

# The deps targets install missing Debian packages; each is a no-op when
# they are present, so it costs nothing on a prepared machine.
apt-install = @missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

deps:
	$(call apt-install,$(BUILD_DEBS))
node-deps:
	$(call apt-install,$(NODE_DEBS))
run-deps:
	$(call apt-install,$(NODE_DEBS) busybox-static)
test-deps:
	$(call apt-install,$(NODE_DEBS) $(TEST_DEBS))

# nri_no_wasm: berthd runs NRI plugins as processes or socket clients, not
# as WebAssembly; leaving the WASM runtime out keeps berthd small.
build: deps
	CGO_ENABLED=0 $(GO) build -tags nri_no_wasm -o $(BIN)/ ./cmd/berthd ./cmd/berthctl
	CGO_ENABLED=0 $(GO) build -ldflags='-s -w' -o $(BIN)/ ./cmd/berth-shim ./cmd/berth-pause
	$(CC) -O2 -Wall -Wextra -Werror -static -o $(BIN)/berth-exec cmd/berth-exec/main.c -lseccomp
	CGO_ENABLED=1 $(GO) build -tags seccomp -o $(BIN)/runc github.com/opencontainers/runc
	CGO_ENABLED=0 $(GO) build -o $(BIN)/cni/ $(CNI_PLUGINS)
	CGO_ENABLED=0 $(GO) build -ldflags="-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$$($(GO) list -m -f '{{.Version}}' sigs.k8s.io/cri-tools)" \
		-o $(BIN)/ sigs.k8s.io/cri-tools/cmd/crictl

# run builds berth, starts berthd in the foreground on the default socket
# (writing the default pod network for 10.88.0.0/16 if none is configured)
# and runs the example pod next to it. Ctrl-C stops berthd, which is what
# was asked for, not a failure; pods stay, as across any restart.
run: build run-deps
	@$(BIN)/berthd --pod-cidr 10.88.0.0/16 --pod-manifest-path $(CURDIR)/example/manifests --fail-swap-on=false & pid=$$!; \
	trap 'kill $$pid; wait $$pid; echo "berthd stopped; the example pod keeps running (make run starts berthd again and adopts it; make run-clean removes it and what berth wrote)"; exit 0' INT TERM; \
	$(GO) run ./test/example || true; \
	wait $$pid

# run-clean undoes make run: the pods stop and go, and what berthd and the
# example wrote (state, images, logs, cgroups, the default network, its
# bridge and leases) is removed (example/clean.sh).
run-clean:
	@sh example/clean.sh

# The kubernetes plugin's tests run a real etcd, kube-apiserver and
# kube-controller-manager, built once from the Go module proxy by
# test/kube/build.sh into a cache outside the repository.
test: build test-deps lint race
	BERTH_KUBE_BIN=$$(bash test/kube/build.sh | tail -1) $(GO) test $(TEST_FLAGS) -count=1 -p 1 -timeout 20m ./...
	GO=$(GO) bash test/fuzz/run.sh $(FUZZ_SHORT)

kube-tools:
	bash test/kube/build.sh

# test-vm runs the systemd lane alone (make test runs it too): berth under
# a real systemd on cgroup v2, in qemu (test/vm; about ten minutes here).
test-vm: build test-deps
	$(GO) test $(TEST_FLAGS) -count=1 -v -timeout 40m ./test/vm

# fuzz runs every fuzz target (test/fuzz/run.sh finds them) for FUZZTIME
# each; make test runs them for FUZZ_SHORT, and go test ./... replays
# their seed corpora. chaos runs test/chaos for CHAOS_ROUNDS rounds (make
# test runs 20); CHAOS_SEED replays a run.
FUZZ_SHORT   ?= 3s
FUZZTIME     ?= 2m
CHAOS_ROUNDS ?= 300
CHAOS_SEED   ?= 0
fuzz:
	GO=$(GO) bash test/fuzz/run.sh $(FUZZTIME)
chaos: build test-deps
	$(GO) test -count=1 -v -timeout 0 ./test/chaos -run TestChaos -chaos.rounds $(CHAOS_ROUNDS) -chaos.seed $(CHAOS_SEED)

# race runs the unit tests of the packages with concurrency under the race
# detector (its -short mode: the end-to-end tests run the real binaries).
RACE_PKGS := ./pkg/agent ./pkg/probe ./pkg/podstatus ./pkg/events ./pkg/source ./pkg/eviction \
	./cri/server ./cri/shim ./cri/store ./cri/image ./cri/crilog ./cri/streaming
race:
	$(GO) test -race -short -count=1 $(RACE_PKGS)

unit:
	$(GO) test -count=1 -short ./...

# bench prints figures and ratios, berth's against a real kubelet +
# containerd's first (test/bench; the kubelet is built once, cached like
# the control plane).
bench: build test-deps
	$(GO) run ./test/bench

# lint fails on unformatted files, vet findings, staticcheck findings
# (staticcheck is pinned in go.mod as a tool) and vulnerabilities the code
# calls in the modules it requires (test/vuln: govulncheck on a database
# built offline; standard library ones are printed as warnings).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) run ./test/vuln

# install puts what `make` built in place and says what it did; it builds
# nothing and installs no compiler. Existing configuration (CNI, crictl)
# is left alone.
install: node-deps
	@[ -x $(BIN)/berthd ] || { echo "nothing built: run make first"; exit 1; }
	install -d $(PREFIX)/bin $(LIBEXEC) $(CNI_BIN) $(CNI_CONF) /etc/berth/manifests
	install -m 0755 $(BIN)/berthd $(BIN)/berthctl $(BIN)/crictl $(PREFIX)/bin/
	install -m 0755 $(BIN)/berth-shim $(BIN)/berth-pause $(BIN)/berth-exec $(BIN)/runc $(LIBEXEC)/
	install -m 0755 $(BIN)/cni/* $(CNI_BIN)/
	@if ls $(CNI_CONF)/*.conflist >/dev/null 2>&1; then echo "kept the CNI configuration in $(CNI_CONF)"; \
	else install -m 0644 cni-plugins/10-berth.conflist $(CNI_CONF)/ && echo "installed $(CNI_CONF)/10-berth.conflist"; fi
	@if [ -e /etc/crictl.yaml ]; then echo "kept /etc/crictl.yaml"; \
	else printf 'runtime-endpoint: unix:///run/berth/berth.sock\nimage-endpoint: unix:///run/berth/berth.sock\n' > /etc/crictl.yaml && echo "installed /etc/crictl.yaml (crictl talks to berth)"; fi
	install -m 0644 systemd/berth.service /etc/systemd/system/berth.service
	@echo "installed berthd, berthctl, crictl in $(PREFIX)/bin, the shim, pause, exec helper and runc in $(LIBEXEC),"
	@echo "the CNI plugins in $(CNI_BIN), /etc/berth/manifests and the unit; start it: systemctl daemon-reload && systemctl enable --now berth"

# uninstall removes what install put in place; configuration it kept or
# wrote, the manifests and berth's state stay (say `rm -rf` yourself).
uninstall:
	-systemctl disable --now berth 2>/dev/null
	rm -f /etc/systemd/system/berth.service
	rm -f $(PREFIX)/bin/berthd $(PREFIX)/bin/berthctl $(PREFIX)/bin/crictl
	rm -rf $(LIBEXEC)
	cd $(BIN)/cni && for p in *; do rm -f $(CNI_BIN)/$$p; done
	@echo "removed the binaries, the CNI plugins berth installed and the unit; kept /etc/berth, $(CNI_CONF), /etc/crictl.yaml,"
	@echo "/var/lib/berth and /var/log/pods (pods still running were not stopped: stop them with crictl first)"

clean:
	rm -rf $(BIN)
