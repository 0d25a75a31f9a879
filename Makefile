# berth build. `make` builds everything into bin/ (the daemon, the shim, the
# pause process, the exec helper, the CLI, runc and the reference CNI
# plugins, all pinned in go.mod). `make test` installs what the tests need and runs them all.

GO        ?= go
BIN       := $(CURDIR)/bin
PREFIX    ?= /usr/local
LIBEXEC   := $(PREFIX)/lib/berth
CNI_BIN   := /opt/cni/bin
CNI_CONF  := /etc/cni/net.d
DEBS      := libseccomp-dev pkg-config busybox-static iptables iproute2 gcc docker-registry containerd systemd
CNI_PLUGINS := \
	github.com/containernetworking/plugins/plugins/main/bridge \
	github.com/containernetworking/plugins/plugins/main/loopback \
	github.com/containernetworking/plugins/plugins/ipam/host-local \
	github.com/containernetworking/plugins/plugins/meta/portmap
TEST_FLAGS ?=

.PHONY: all build deps run test unit e2e bench install lint clean kube-tools

all: build

# deps installs the Debian packages the build and the tests need. It is a
# no-op when they are present, so it costs nothing on a prepared machine.
deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# nri_no_wasm: berthd runs NRI plugins as processes or socket clients, not
# as WebAssembly; leaving the WASM runtime out keeps berthd small.
build: deps
	CGO_ENABLED=0 $(GO) build -tags nri_no_wasm -o $(BIN)/ ./cmd/berthd ./cmd/berthctl
	CGO_ENABLED=0 $(GO) build -ldflags='-s -w' -o $(BIN)/ ./cmd/berth-shim ./cmd/berth-pause
	$(CC) -O2 -Wall -Wextra -Werror -static -o $(BIN)/berth-exec cmd/berth-exec/main.c -lseccomp
	CGO_ENABLED=1 $(GO) build -tags seccomp -o $(BIN)/runc github.com/opencontainers/runc
	CGO_ENABLED=0 $(GO) build -o $(BIN)/cni/ $(CNI_PLUGINS)

# run builds berth, starts berthd in the foreground on the default socket
# (writing the default pod network for 10.88.0.0/16 if none is configured)
# and runs the example pod next to it. Ctrl-C stops berthd; pods stay.
run: build
	@$(BIN)/berthd --pod-cidr 10.88.0.0/16 --pod-manifest-path $(CURDIR)/example/manifests & pid=$$!; \
	trap 'kill $$pid; wait $$pid' INT TERM; \
	$(GO) run ./test/example || true; \
	wait $$pid

# The kubernetes plugin's tests run a real etcd, kube-apiserver and
# kube-controller-manager, built once from the Go module proxy by
# test/kube/build.sh into a cache outside the repository.
test: build lint
	BERTH_KUBE_BIN=$$(bash test/kube/build.sh | tail -1) $(GO) test $(TEST_FLAGS) -count=1 -p 1 -timeout 20m ./...

kube-tools:
	bash test/kube/build.sh

unit:
	$(GO) test -count=1 -short ./...

bench: build
	$(GO) run ./test/bench

# lint fails on unformatted files, vet findings and staticcheck findings
# (staticcheck is pinned in go.mod as a tool).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

install: build
	install -d $(PREFIX)/bin $(LIBEXEC) $(CNI_BIN) $(CNI_CONF)
	install -m 0755 $(BIN)/berthd $(BIN)/berthctl $(PREFIX)/bin/
	install -m 0755 $(BIN)/berth-shim $(BIN)/berth-pause $(BIN)/berth-exec $(BIN)/runc $(LIBEXEC)/
	install -m 0755 $(BIN)/cni/* $(CNI_BIN)/
	[ -n "$$(ls $(CNI_CONF)/*.conflist 2>/dev/null)" ] || install -m 0644 cni-plugins/10-berth.conflist $(CNI_CONF)/
	install -m 0644 systemd/berth.service /etc/systemd/system/berth.service

clean:
	rm -rf $(BIN)
